"""In-Shop has no test split: training evaluates and stores query-against-gallery retrieval."""

from dataset_trees import make_inshop

from dmlviz.train import default_config, finish_run, train


def test_inshop_run_evaluates_queries_against_the_gallery(tmp_path):
    root = make_inshop(tmp_path)
    config = default_config("inshop", "contrastive")
    config.update(
        dataset_root=str(root),
        model="convnet",
        image_size=32,
        epochs=1,
        batch_size=4,
        m_per_class=2,
        embedding_dim=16,
        eval_every=1,
        pretrained=False,
    )
    run = train(config, tmp_path / "run", progress=False)
    assert "map@r" in run.metrics().iloc[-1]
    metrics = finish_run(run)
    assert metrics["query_split"] == "query" and metrics["reference_split"] == "gallery"
    assert run.has_embeddings("query") and run.has_embeddings("gallery")
    assert 0.0 <= metrics["map@r"] <= 1.0

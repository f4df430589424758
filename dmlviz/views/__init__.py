"""What the dashboard shows, as plain functions returning DataFrames, plotly figures and HTML.

One module per page (``runs``, ``embedding_map``, ``lens``, ``consistency``, ``queries``,
``anatomy``, ``lab`` for the Noise lab), plus ``tuning`` (the Runs page's tuning studies),
``data`` (loading from run directories), ``thumbs`` (thumbnails as data URIs) and ``style``
(colours and names). Nothing here imports Streamlit: ``dashboard/`` holds the thin pages that call
these functions, and the tests call them directly.
"""

"""The Python side of the browser runtime (:mod:`.bridge`, driven by ``static/worker.js``)."""

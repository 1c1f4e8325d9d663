"""Serving exported SavedModels without TF Serving, and the predict client.

``server`` answers TF Serving's REST API (``rest`` parses and formats its
requests) and ``grpc_api`` its gRPC API; both run requests through
``inference`` (``inputs`` checks them against the signature and the limits,
``batching`` merges concurrent ones). ``repository`` loads, polls and
unloads the versions of each model by the version policies of ``config``
(TF Serving's model config and batching parameters files); ``metrics``
keeps TF Serving's Prometheus metrics. ``predict`` runs a SavedModel on
image files.
"""

import tfcnn

# The server runs SavedModels, never .keras files: tfcnn's layers,
# augmentation and training modules stay out of its process.
tfcnn.stop_registering_on_import()

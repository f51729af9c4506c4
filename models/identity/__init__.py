"""Face identity: embeddings (dlib's descriptor, ArcFace IR-SE-50) and CSIM between faces."""

"""The face: mediapipe's mesh tracker, the 3D shape model, and the parameters p they give."""

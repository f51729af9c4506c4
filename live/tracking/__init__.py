"""Tracking as the application uses it: estimators built from the config, `live track`,
`live calibrate`, overlays, and tracking whole clips."""

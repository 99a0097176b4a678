"""Model preparation: NLLB translation models on CTranslate2 (nllb.py), base LMs for SFT (lm.py), the
CTranslate2 responder (responder.py), what they share (convert.py: Hub download, conversion, manifests)
and the locally built smoke models (smoke.py).

Every prepared model directory holds a `manifest.json`; a smoke model's manifest has `smoke: true`,
and everything produced from it records that. That contract (HUB_ID, SMOKE_MODEL_PREFIX, read_manifest,
is_smoke) lives in schemas/models.py."""

"""Model preparation: NLLB translation models on CTranslate2 (nllb.py) and base LMs for SFT (lm.py).

Every prepared model directory holds a `manifest.json`; a smoke model's manifest has `smoke: true`,
and everything produced from it records that."""

import re

# `org/name` as a Hub model id, as opposed to a local directory.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
# Every model fingerprint from a smoke model starts with this, so smoke output can never pass for real.
SMOKE_MODEL_PREFIX = "smoke:"

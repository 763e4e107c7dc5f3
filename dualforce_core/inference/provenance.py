"""Does this machine's VAE / HuBERT match what the checkpoint was trained on? Notes, and the latent record.

A checkpoint's `preprocessing.json` names the extractors (weights fingerprints) behind its training
features. Different weights here generate a different video, so the generator says so; the latent
normalisation always comes from the record, so a VAE directory whose config carries other statistics
cannot silently rescale the model's latents.
"""

from __future__ import annotations

from diffusers.models.autoencoders.autoencoder_kl_wan import AutoencoderKLWan

from dualforce_core.preprocessing import Preprocessing
from dualforce_core.weights import WeightsRegistry

FINGERPRINT_CHARS = 16  # extractor ids carry the first 16 hex digits of the weights' sha256


def _differs(extractor_ids: list[str], component: str, registry: WeightsRegistry) -> bool:
    prefix = f"{component}:{registry.fingerprint(component)[:FINGERPRINT_CHARS]}"
    return bool(extractor_ids) and not any(e.startswith(prefix) for e in extractor_ids)


def provenance_notes(record: Preprocessing, registry: WeightsRegistry, vae: AutoencoderKLWan) -> list[str]:
    """Apply the record's latent normalisation to `vae` and describe every mismatch with this machine."""
    notes = []
    if record.latents is not None:
        recorded = (list(record.latents.latents_mean), list(record.latents.latents_std))
        if (list(vae.config["latents_mean"]), list(vae.config["latents_std"])) != recorded:
            notes.append(
                "the VAE's latent statistics differ from the checkpoint's record: using the record's"
            )
            vae.register_to_config(latents_mean=recorded[0], latents_std=recorded[1])
        if _differs(record.latents.extractor_ids, "wan_vae", registry):
            notes.append(
                f"the VAE here is not the one behind the training latents ({record.latents.extractor_ids})"
            )
    if _differs(record.audio.extractor_ids, "hubert", registry):
        notes.append(
            f"the HuBERT here is not the one behind the training features ({record.audio.extractor_ids})"
        )
    return notes

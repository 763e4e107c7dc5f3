"""Load a `DualForceConfig` from YAML plus dotted command-line overrides.

A YAML file may start from others with `extends: path` (or a list, relative to the file), and its
`model` section may name `preset: tiny|small|base`, which starts from `configs/model/<preset>.yaml`.
Mistyped keys fail with the key's full path and the closest valid names.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dualforce_core.config.schema import DualForceConfig
from dualforce_core.errors import UserError

CONFIG_DIR_ENV = "DUALFORCE_CONFIG_DIR"


class ConfigError(UserError, ValueError):
    """A config that cannot be used; the message says which key and why."""


def config_dir() -> Path:
    env = os.environ.get(CONFIG_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "configs"


def model_preset_path(name: str) -> Path:
    path = config_dir() / "model" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (config_dir() / "model").glob("*.yaml"))
        raise ConfigError(f"unknown model preset {name!r}; known presets: {', '.join(known)}")
    return path


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level, not {type(data).__name__}")
    return data


def read_config_file(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's mapping with its `extends` chain resolved (later files win)."""
    path = path.resolve()
    if path in _seen:
        raise ConfigError(f"config 'extends' cycle: {' -> '.join(str(p) for p in (*_seen, path))}")
    data = _read_yaml(path)
    parents = data.pop("extends", [])
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        merged = deep_merge(merged, read_config_file(path.parent / parent, (*_seen, path)))
    return deep_merge(merged, data)


def _resolve_model_preset(data: dict[str, Any]) -> dict[str, Any]:
    model = data.get("model")
    if isinstance(model, Mapping) and "preset" in model:
        preset = _read_yaml(model_preset_path(str(model["preset"])))
        data = {**data, "model": deep_merge(preset, model)}
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def _check_path(keys: list[str]) -> None:
    """Reject overrides of keys the schema does not have, before validation hides where they came from."""
    model: type[BaseModel] | None = DualForceConfig
    for depth, key in enumerate(keys):
        if model is None:
            return
        fields = model.model_fields
        if key not in fields:
            near = difflib.get_close_matches(key, list(fields), n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else f"; valid keys: {', '.join(fields)}"
            raise ConfigError(f"unknown config key {'.'.join(keys[: depth + 1])!r}{hint}")
        annotation = fields[key].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    for text in overrides:
        keys, value = parse_override(text)
        _check_path(keys)
        patch: dict[str, Any] = {keys[-1]: value}
        for key in reversed(keys[:-1]):
            patch = {key: patch}
        data = deep_merge(data, patch)
    return data


def _explain(err: ValidationError) -> str:
    lines = []
    for issue in err.errors():
        where = ".".join(str(part) for part in issue["loc"])
        if issue["type"] == "extra_forbidden":
            lines.append(f"unknown config key {where!r}")
        else:
            lines.append(f"{where}: {issue['msg']} (got {issue.get('input')!r})")
    return "invalid config:\n  " + "\n  ".join(lines)


def build_config(data: Mapping[str, Any]) -> DualForceConfig:
    try:
        return DualForceConfig.model_validate(_resolve_model_preset(dict(data)))
    except ValidationError as err:
        raise ConfigError(_explain(err)) from None


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> DualForceConfig:
    """Defaults, then the YAML file (and what it extends), then `key.sub=value` overrides."""
    data = read_config_file(Path(path)) if path else {}
    return build_config(apply_overrides(data, overrides))


def dump_config(config: DualForceConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def flatten(config: BaseModel, prefix: str = "") -> dict[str, Any]:
    """`{"train.lr": 1e-4, ...}`: the form trackers (MLflow params) want."""
    flat: dict[str, Any] = {}
    for key, value in config.model_dump(mode="json").items():
        _flatten_into(flat, f"{prefix}{key}", value)
    return flat


def _flatten_into(flat: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, dict) and value:
        for sub, inner in value.items():
            _flatten_into(flat, f"{key}.{sub}", inner)
    else:
        flat[key] = value

"""Read `template.yaml` as CloudFormation would after the SAM transform, for the local cloud.

Only what the local "deployment" needs: parameters with their defaults and overrides, conditions,
and the intrinsic functions the template uses (Ref, Fn::Sub, Fn::GetAtt, Fn::If, Fn::Equals,
Fn::Not, Fn::Join, Fn::Split, Fn::Select). Physical ids come from a resolver the deployer provides,
so the definition's substitutions are computed from the template's own resources, never kept as a
second copy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass
class Template:
    document: dict[str, Any]
    parameters: dict[str, str]
    pseudo: dict[str, str]
    physical_ids: dict[str, str] = field(default_factory=dict)
    attributes: Callable[[str, str], str] | None = None

    @classmethod
    def load(cls, path: Path, overrides: Mapping[str, str], pseudo: Mapping[str, str]) -> Template:
        document = yaml_parse(path.read_text())
        parameters: dict[str, str] = {}
        for name, spec in document.get("Parameters", {}).items():
            if name in overrides:
                parameters[name] = str(overrides[name])
            elif "Default" in spec:
                parameters[name] = str(spec["Default"])
            else:
                raise ValueError(f"template parameter {name} has no default; pass it as an override")
        unknown = set(overrides) - set(parameters)
        if unknown:
            raise ValueError(f"unknown template parameters: {sorted(unknown)}")
        return cls(document, parameters, dict(pseudo))

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.document["Resources"])

    def globals_function(self) -> dict[str, Any]:
        return dict(self.document.get("Globals", {}).get("Function", {}))

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.document["Conditions"][name]))

    def resource_enabled(self, logical_id: str) -> bool:
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(condition)

    # Intrinsic functions -------------------------------------------------------------------------

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            spec = self.document["Parameters"][name]
            value = self.parameters[name]
            if spec.get("Type") == "CommaDelimitedList":
                return [v for v in value.split(",")] if value else [""]
            return value
        if name in self.physical_ids:
            return self.physical_ids[name]
        raise KeyError(f"Ref to {name}: not a parameter, pseudo parameter or deployed resource")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        if self.attributes is None:
            raise KeyError(f"GetAtt {logical_id}.{attribute}: no resolver")
        return self.attributes(logical_id, attribute)

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self._get_att(logical_id, attribute)
            return str(self._ref(name))

        return _SUB_VARIABLE.sub(replace, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self._ref(value)
            if key == "Fn::GetAtt":
                logical_id, attribute = value if isinstance(value, list) else value.split(".", 1)
                return self._get_att(logical_id, attribute)
            if key == "Fn::Sub":
                if isinstance(value, str):
                    return self._sub(value, {})
                text, variables = value
                return self._sub(text, {k: self.resolve(v) for k, v in variables.items()})
            if key == "Fn::If":
                name, when_true, when_false = value
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = (self.resolve(v) for v in value)
                return left == right
            if key == "Fn::Not":
                return not self.resolve(value[0])
            if key == "Fn::Join":
                separator, items = value
                return separator.join(str(v) for v in self.resolve(items))
            if key == "Fn::Split":
                separator, text = value
                return str(self.resolve(text)).split(separator)
            if key == "Fn::Select":
                index, items = value
                return self.resolve(items)[int(self.resolve(index))]
            if key.startswith("Fn::"):
                raise NotImplementedError(f"intrinsic {key} is not supported by the local cloud")
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in node.items()) if v is not NO_VALUE}

"""Rules of `features.store`: the views, entities and derived features must name columns that
exist (in the contract, in their source files, in the entity rows) and form no cycle."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

from mlops_compiler.load.data_header import HeaderError, columns_of
from mlops_compiler.spec.model import DerivedFeature, FeatureStore, Spec
from mlops_compiler.spec.rules import Finding, suggest

Loc = tuple[str | int, ...]
STORE: Loc = ("features", "store")
ARITY = {"ratio": 2, "difference": 2, "log1p": 1, "bucketize": 1, "days_since": 1}
# The contract type a transform's output must have.
OUTPUT_TYPE = {
    "ratio": "float",
    "difference": "float",
    "log1p": "float",
    "bucketize": "int",
    "days_since": "float",
}
NUMERIC = {"int", "float"}
_SOURCE_NEEDED = (
    "; the build reads the columns of a view's source (they decide where derived features "
    "are computed), so it must exist when the project is built"
)


def check(spec: Spec, spec_dir: Path) -> list[Finding]:
    store = spec.features.store if spec.features is not None else None
    if store is None:
        return []
    headers: dict[str, list[str] | None] = {}
    findings = list(_views(spec, store, spec_dir, headers))
    raw = {c for columns in headers.values() for c in columns or ()}
    findings.extend(_derived(spec, store, raw))
    if not findings:
        findings.extend(_placement(store, headers))
    findings.extend(_entity_rows(spec, store, spec_dir))
    return findings


def source_columns(store: FeatureStore, spec_dir: Path) -> dict[str, list[str] | None]:
    """Each view's source columns (None when unknown or unreadable)."""
    out: dict[str, list[str] | None] = {}
    for view in store.views:
        try:
            out[view.name] = columns_of(spec_dir / view.source)
        except HeaderError:
            out[view.name] = None
    return out


def derived_order(store: FeatureStore) -> list[str]:
    """Derived features in an order where every input comes first (the spec has no cycle)."""
    done: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        for source in store.derived[name].inputs:
            if source in store.derived:
                visit(source)
        done.append(name)

    for name in store.derived:
        visit(name)
    return done


def placement(store: FeatureStore, headers: dict[str, list[str] | None]) -> dict[str, str | None]:
    """The view that computes each derived feature before materialisation, or None for one
    computed on demand: a feature whose inputs all come from one view belongs to that view."""
    served = {f: {v.name} for v in store.views for f in v.features}
    place: dict[str, str | None] = {}
    for name in derived_order(store):
        common: set[str] | None = None
        for source in store.derived[name].inputs:
            if source in store.derived:
                where = place[source]
                views = {where} if where is not None else set()
            elif source in served:
                views = served[source]
            else:  # a raw source column, or a request-time feature (no view)
                views = {v.name for v in store.views if source in (headers.get(v.name) or ())}
            common = views if common is None else common & views
        chosen = [v.name for v in store.views if v.name in (common or set())]
        place[name] = chosen[0] if chosen else None
    return place


def _placement(store: FeatureStore, headers: dict[str, list[str] | None]) -> Iterator[Finding]:
    """A raw source column exists only inside its view: an on-demand feature cannot read it."""
    served = {f for v in store.views for f in v.features}
    raw = {c for columns in headers.values() for c in columns or ()}
    for name, where in placement(store, headers).items():
        if where is not None:
            continue
        for j, source in enumerate(store.derived[name].inputs):
            if source in raw and source not in served and source not in store.derived:
                yield (
                    (*STORE, "derived", name, "inputs", j),
                    f"{source!r} is a source column, read only inside its view, but {name!r} "
                    "also needs inputs from elsewhere; serve it from a view (features)",
                )


def _views(
    spec: Spec, store: FeatureStore, spec_dir: Path, headers: dict[str, list[str] | None]
) -> Iterator[Finding]:
    contract = spec.data.contract.columns
    entities = {e.name: e for e in store.entities}
    for kind, names in (
        ("entities", [e.name for e in store.entities]),
        ("views", [v.name for v in store.views]),
    ):
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                yield (*STORE, kind, i, "name"), f"{name!r} is declared twice"
            seen.add(name)
    served: dict[str, str] = {}
    for i, view in enumerate(store.views):
        loc: Loc = (*STORE, "views", i)
        entity = entities.get(view.entity)
        if entity is None:
            yield (
                (*loc, "entity"),
                f"unknown entity {view.entity!r}{suggest(view.entity, list(entities))}",
            )
        try:
            columns = columns_of(spec_dir / view.source)
        except HeaderError as exc:
            # Unlike data.train (a warning when missing), the build reads a source's columns.
            hint = "" if (spec_dir / view.source).exists() else _SOURCE_NEEDED
            yield (*loc, "source"), f"{exc}{hint}"
            columns = None
        headers[view.name] = columns
        if columns is not None:
            required = [("timestamp", view.timestamp)]
            if entity is not None:
                required.append(("entity", entity.join_key))
            for field, column in required:
                if column not in columns:
                    yield (
                        (*loc, field),
                        f"{view.source} has no column {column!r}{suggest(column, columns)}",
                    )
        for j, feature in enumerate(view.features):
            at: Loc = (*loc, "features", j)
            if columns is not None and feature not in columns:
                yield at, f"{view.source} has no column {feature!r}{suggest(feature, columns)}"
            if feature not in contract:
                yield at, f"{feature!r} is not a contract column{suggest(feature, list(contract))}"
            elif feature == spec.data.target:
                yield at, f"{feature!r} is the target; a view serves features"
            if feature in store.derived:
                yield at, f"{feature!r} is a derived feature; it is computed, not read"
            elif feature in served:
                yield at, f"{feature!r} is already served by view {served[feature]!r}"
            served[feature] = view.name


def _derived(spec: Spec, store: FeatureStore, raw: set[str]) -> Iterator[Finding]:
    """`raw`: every column of the views' sources, which a derived feature may read."""
    contract = spec.data.contract.columns
    for name, derived in store.derived.items():
        loc: Loc = (*STORE, "derived", name)
        column = contract.get(name)
        want = OUTPUT_TYPE[derived.transform]
        if column is None:
            yield loc, f"{name!r} is not a contract column; declare it there as {want}"
        elif name == spec.data.target:
            yield loc, f"{name!r} is the target; it cannot be derived"
        elif column.type != want:
            yield loc, f"{derived.transform} gives {want} values; the contract says {column.type}"
        yield from _arguments(loc, derived)
        for j, source in enumerate(derived.inputs):
            at: Loc = (*loc, "inputs", j)
            if source == name:
                yield at, f"{name!r} cannot be its own input"
                continue
            rule = contract.get(source)
            if rule is None and source not in raw and source not in store.derived:
                known = sorted({*contract, *store.derived, *raw})
                yield (
                    at,
                    f"unknown input {source!r}: not a contract, source or derived column"
                    f"{suggest(source, known)}",
                )
                continue
            kind = None if rule is None else rule.type  # a raw source column's type is unknown
            if derived.transform == "days_since":
                if kind is not None and kind != "str":
                    yield at, f"days_since takes a timestamp column, not a {kind} column"
            elif kind is not None and kind not in NUMERIC:
                yield at, f"{derived.transform} takes numbers; {source!r} is a {kind} column"
    yield from _cycles(store)


def _arguments(loc: Loc, derived: DerivedFeature) -> Iterator[Finding]:
    arity = ARITY[derived.transform]
    if len(derived.inputs) != arity:
        yield (
            (*loc, "inputs"),
            f"{derived.transform} takes {arity} input{'s' if arity > 1 else ''}, not {len(derived.inputs)}",
        )
    edges = derived.boundaries
    if derived.transform == "bucketize":
        if edges is None:
            yield loc, "bucketize needs boundaries"
        elif any(b <= a for a, b in itertools.pairwise(edges)):
            yield (*loc, "boundaries"), "boundaries must be strictly ascending"
    elif edges is not None:
        yield (*loc, "boundaries"), f"boundaries apply to bucketize, not {derived.transform}"


def _cycles(store: FeatureStore) -> Iterator[Finding]:
    graph = {name: [i for i in d.inputs if i in store.derived] for name, d in store.derived.items()}
    state: dict[str, int] = {}  # 1 visiting, 2 done
    reported: set[str] = set()

    def visit(node: str, path: list[str]) -> Iterator[Finding]:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                if nxt not in reported:
                    reported.update(cycle)
                    yield (
                        (*STORE, "derived", nxt),
                        "derived features form a cycle: " + " -> ".join(cycle),
                    )
            elif state.get(nxt) is None:
                yield from visit(nxt, [*path, nxt])
        state[node] = 2

    for name in graph:
        if name not in state:
            yield from visit(name, [name])


def _entity_rows(spec: Spec, store: FeatureStore, spec_dir: Path) -> Iterator[Finding]:
    if store.entity_timestamp is None:
        return
    try:
        columns = columns_of(spec_dir / spec.data.train)
    except HeaderError:
        return  # the runtime reports an unreadable training file with its contract report
    if columns is None:
        return
    keys = sorted({e.join_key for e in store.entities})
    for column in [store.entity_timestamp, *keys]:
        if column not in columns:
            loc: Loc = (
                (*STORE, "entity_timestamp")
                if column == store.entity_timestamp
                else (*STORE, "entities")
            )
            yield (
                loc,
                f"{spec.data.train} (the entity rows) has no column {column!r}{suggest(column, columns)}",
            )

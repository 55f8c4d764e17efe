"""openapi_check.py -- checks an answer against the OpenAPI document.

bb.Client calls check() for every answer the black-box suite receives, so
the document (src/http/assets/openapi.json, the file the server serves as
GET /openapi.json) cannot drift from the server: a status the document does
not list for that route, a missing required header, a body of another media
type, or a JSON body that does not match the route's schema fails the test.

Rules beyond the per-operation ones, as the API's general rules say:
  - a path no template matches must answer 404 (an error body);
  - a path that matches but has no operation for the method must answer 405
    with an Allow header;
  - 401 with WWW-Authenticate is allowed on every route that is not open
    (security: []), since servers may run with a token;
  - 400 and 413 may come from the HTTP layer before routing.
Paths match as the server's router does: one trailing slash ignored,
"{x}" matches one non-empty segment, and a template with more literal
segments wins (GET /channels is the listing, not the channel "channels"),
but only among templates that have the method (DELETE /metrics deletes the
channel "metrics").
"""

import json
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOC_PATH = os.path.join(ROOT, "src", "http", "assets", "openapi.json")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

_state = {}


class Mismatch(AssertionError):
    pass


def _deref(node, doc, depth=0):
    """A copy of node with every local $ref replaced by its target (siblings
    of a $ref, such as a description, are kept)."""
    if depth > 50:
        raise ValueError("$ref nesting too deep")
    if isinstance(node, list):
        return [_deref(x, doc, depth + 1) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node and node["$ref"].startswith("#/"):
        target = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        out = dict(_deref(target, doc, depth + 1))
        for k, v in node.items():
            if k != "$ref":
                out[k] = _deref(v, doc, depth + 1)
        return out
    return {k: _deref(v, doc, depth + 1) for k, v in node.items()}


def load():
    """The document with its $refs resolved, and its routes, loaded once."""
    if "routes" in _state:
        return _state
    try:
        import jsonschema  # Debian: python3-jsonschema (scripts/deps.sh test)
    except ImportError:
        raise Mismatch("the black-box suite checks answers against %s and needs the Python "
                       "module jsonschema (Debian: apt-get install python3-jsonschema)" % DOC_PATH)
    with open(DOC_PATH, encoding="utf-8") as f:
        raw = json.load(f)
    doc = _deref(raw, raw)
    routes = []
    for tmpl, item in doc["paths"].items():
        segs = tmpl.strip("/").split("/")
        literal = sum(1 for s in segs if not s.startswith("{"))
        routes.append((segs, literal, tmpl, item))
    routes.sort(key=lambda r: -r[1])  # stable: the document's order within a rank
    import jsonschema.exceptions
    _state.update(doc=doc, routes=routes, validator=jsonschema.Draft202012Validator,
                  best_match=jsonschema.exceptions.best_match, cache={})
    return _state


def _segments(target):
    path = target.split("?", 1)[0]
    if not path.startswith("/"):
        return None
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    segs = path[1:].split("/")
    if any(s == "" for s in segs):
        return None
    return segs


def find(method, target):
    """(template, operation or None, matched) for a request."""
    st = load()
    segs = _segments(target)
    matched = []
    if segs is not None:
        for tsegs, _, tmpl, item in st["routes"]:
            if len(tsegs) == len(segs) and all(t.startswith("{") or t == s for t, s in zip(tsegs, segs)):
                matched.append((tmpl, item))
    m = method.lower()
    for tmpl, item in matched:
        if m in item:
            return tmpl, item[m], True
    return (matched[0][0] if matched else None), None, bool(matched)


def _validate(schema, value, where):
    st = _state
    v = st["cache"].get(id(schema))
    if v is None:
        v = st["cache"][id(schema)] = (schema, st["validator"](schema))
    err = _state["best_match"](v[1].iter_errors(value))
    if err is not None:
        at = "/".join(str(p) for p in err.absolute_path) or "(the body)"
        raise Mismatch("%s: at %s: %s" % (where, at, err.message[:300]))


def _header(headers, name):
    v = headers.get(name) if headers is not None else None
    return v


def _check_error(where, status, headers, raw, allowed):
    if status not in allowed:
        raise Mismatch("%s: status %d is not in the document (expected one of %s)"
                       % (where, status, sorted(allowed)))
    _check_json(where, headers, raw, load()["doc"]["components"]["schemas"]["Error"])


def _check_json(where, headers, raw, schema):
    ct = (_header(headers, "Content-Type") or "").lower()
    if not ct.startswith("application/json"):
        raise Mismatch("%s: Content-Type %r, the document says application/json" % (where, ct))
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise Mismatch("%s: body is not JSON: %r" % (where, raw[:200]))
    _validate(schema, value, where)


# While Part C of the API was being built its routes could still answer as
# unknown (404 "no such resource", or 405 whose Allow lacks the method);
# every Part C route is in the server now, so that is a mismatch again.
PART_C_PENDING = False


def _not_built_yet(op, method, status, headers, raw):
    if not PART_C_PENDING or op.get("x-distribuerad-part") != "C":
        return False
    if status == 405:
        allow = [m.strip().upper() for m in (_header(headers, "Allow") or "").split(",")]
        return method.upper() not in allow
    if status == 404:
        try:
            body = json.loads(raw.decode("utf-8"))
            return isinstance(body, dict) and set(body) == {"error"} and \
                str(body["error"]).startswith("no such resource")
        except (ValueError, UnicodeDecodeError):
            return False
    return False


def check(method, target, status, headers, raw):
    """Raises Mismatch if the answer (status, headers: a mapping with .get,
    raw: the body bytes) is not one the document allows for the request."""
    tmpl, op, matched = find(method, target)
    where = "%s %s -> %d (OpenAPI %s)" % (method, target[:120], status, tmpl or "no path")
    generic = {400, 401, 413}
    if op is not None and op.get("security") == []:
        generic.discard(401)
    if status == 401 and 401 in generic and not _header(headers, "WWW-Authenticate"):
        raise Mismatch("%s: 401 without WWW-Authenticate" % where)
    if op is None:
        expect = 405 if matched else 404
        _check_error(where, status, headers, raw, generic | {expect})
        if status == 405 and not _header(headers, "Allow"):
            raise Mismatch("%s: 405 without an Allow header" % where)
        return
    resp = op["responses"].get(str(status))
    if resp is None and _not_built_yet(op, method, status, headers, raw):
        return
    if resp is None:
        if status in generic:
            return _check_error(where, status, headers, raw, generic)
        raise Mismatch("%s: status %d is not in the document (it lists %s)"
                       % (where, status, ", ".join(sorted(op["responses"]))))
    for name, h in (resp.get("headers") or {}).items():
        if h.get("required") and not _header(headers, name):
            raise Mismatch("%s: the document requires header %s" % (where, name))
    content = resp.get("content")
    if method.upper() == "HEAD":
        return
    if not content:
        if raw:
            raise Mismatch("%s: the document says no body, got %r" % (where, raw[:200]))
        return
    if not raw and resp.get("x-distribuerad-may-be-empty"):
        return
    ct = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    if ct not in content:
        raise Mismatch("%s: Content-Type %r is not one of %s" % (where, ct, sorted(content)))
    schema = content[ct].get("schema")
    if ct == "application/json" and schema is not None:
        _check_json(where, headers, raw, schema)

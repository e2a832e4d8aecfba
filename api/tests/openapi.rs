//! The OpenAPI document (`api/openapi.json`) kept true: it lists exactly the server's
//! routes, every reference in it resolves, it is a well-formed OpenAPI 3.0 document, a
//! real berthd serves it and answers every operation it lists, and what berthd answers
//! (status, content type, JSON body) is what the document says, for errors and for the
//! whole life of a real container.

mod harness;

use std::collections::{BTreeMap, BTreeSet};

use berth_api::routes::openapi::DOCUMENT;
use berth_api::routes::ROUTES;
use harness::support::bundle;
use harness::{wait_state_checked, Daemon, Resp, Scratch};
use serde_json::{json, Value};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn doc() -> Value {
    serde_json::from_str(DOCUMENT).expect("api/openapi.json is not valid JSON")
}

/// Every `(METHOD, path)` the document lists.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("the document has no paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (m.to_ascii_uppercase(), path.clone()))
        })
        .collect()
}

/// The target of a local `$ref` (`#/a/b`).
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// `value` with `$ref`s followed.
fn deref<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..16 {
        match value.get("$ref").and_then(Value::as_str) {
            Some(r) => value = resolve(doc, r).unwrap_or_else(|| panic!("{r} does not resolve")),
            None => return value,
        }
    }
    panic!("a $ref chain longer than 16: {value}")
}

#[test]
fn the_document_lists_exactly_the_servers_routes() {
    let documented = operations(&doc());
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(served.len(), ROUTES.len(), "ROUTES lists a route twice");
    let undocumented: Vec<String> = served
        .difference(&documented)
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    let unserved: Vec<String> = documented
        .difference(&served)
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "routes in ROUTES (api/src/routes/mod.rs) missing from api/openapi.json: {undocumented:?}; \
         operations in api/openapi.json missing from ROUTES: {unserved:?}"
    );
}

#[test]
fn every_reference_resolves() {
    fn walk(doc: &Value, v: &Value, at: &str, bad: &mut Vec<String>, seen: &mut usize) {
        match v {
            Value::Object(map) => {
                if let Some(r) = map.get("$ref") {
                    *seen += 1;
                    match r.as_str() {
                        Some(s) if resolve(doc, s).is_some() => {}
                        _ => bad.push(format!("{at}: {r}")),
                    }
                    // OpenAPI 3.0 ignores whatever stands beside a $ref.
                    if map.len() > 1 {
                        bad.push(format!("{at}: $ref with siblings {:?}", map.keys()));
                    }
                }
                for (k, child) in map {
                    walk(doc, child, &format!("{at}/{k}"), bad, seen);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(doc, child, &format!("{at}/{i}"), bad, seen);
                }
            }
            _ => {}
        }
    }
    let doc = doc();
    let (mut bad, mut seen) = (Vec::new(), 0);
    walk(&doc, &doc, "#", &mut bad, &mut seen);
    assert!(bad.is_empty(), "bad references: {bad:#?}");
    assert!(seen > 50, "only {seen} references: is components/ used?");
    // And every component is used somewhere.
    let text = DOCUMENT.replace(' ', "");
    for kind in ["schemas", "responses", "parameters", "headers"] {
        for name in doc["components"][kind]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            let r = format!("\"$ref\":\"#/components/{kind}/{name}\"");
            let mapped = format!("\"#/components/{kind}/{name}\"");
            assert!(
                text.contains(&r) || text.contains(&mapped),
                "components/{kind}/{name} is never referenced"
            );
        }
    }
}

#[test]
fn every_operation_is_complete() {
    let doc = doc();
    let mut ids = BTreeMap::new();
    for (method, path) in operations(&doc) {
        let item = &doc["paths"][&path];
        let op = &item[method.to_ascii_lowercase()];
        let what = format!("{method} {path}");
        let id = op["operationId"].as_str().filter(|s| !s.is_empty());
        let id = id.unwrap_or_else(|| panic!("{what} has no operationId"));
        if let Some(other) = ids.insert(id.to_owned(), what.clone()) {
            panic!("operationId {id} is used by {other} and {what}");
        }
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{what} has no summary"
        );
        let responses = op["responses"].as_object();
        let responses = responses.unwrap_or_else(|| panic!("{what} has no responses"));
        assert!(!responses.is_empty(), "{what} has no responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{what} documents no success"
        );
        for (status, resp) in responses {
            let code: u16 = status
                .parse()
                .unwrap_or_else(|_| panic!("{what}: response {status:?} is not a status code"));
            let resp = deref(&doc, resp);
            assert!(
                resp["description"].is_string(),
                "{what} {status}: no description"
            );
            for (media, content) in resp["content"].as_object().into_iter().flatten() {
                assert!(
                    content["schema"].is_object(),
                    "{what} {status} {media}: no schema"
                );
            }
            // Every error is the one error shape.
            if code >= 400 {
                assert_eq!(
                    resp["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{what} {status}: not the Error schema"
                );
            }
        }
        // Path parameters: each `{name}` declared (on the path or the operation), and
        // nothing declared that the path lacks.
        let declared: BTreeSet<String> = item["parameters"]
            .as_array()
            .into_iter()
            .chain(op["parameters"].as_array())
            .flatten()
            .map(|p| deref(&doc, p))
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(p["required"], true, "{what}: path parameter not required");
                p["name"].as_str().unwrap_or_default().to_owned()
            })
            .collect();
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_owned)
            .collect();
        assert_eq!(declared, in_path, "{what}: path parameters");
    }
}

/// Whether every key of `orig` survived in `back` (numbers compared by value).
fn kept(orig: &Value, back: &Value, at: &str, lost: &mut Vec<String>) {
    match (orig, back) {
        (Value::Object(o), Value::Object(b)) => {
            for (k, v) in o {
                match b.get(k) {
                    Some(w) => kept(v, w, &format!("{at}/{k}"), lost),
                    None => lost.push(format!("{at}/{k}")),
                }
            }
        }
        (Value::Array(o), Value::Array(b)) if o.len() == b.len() => {
            for (i, (v, w)) in o.iter().zip(b).enumerate() {
                kept(v, w, &format!("{at}/{i}"), lost);
            }
        }
        (Value::Number(o), Value::Number(b)) if o.as_f64() == b.as_f64() => {}
        (o, b) if o == b => {}
        (o, b) => lost.push(format!("{at}: {o} became {b}")),
    }
}

#[test]
fn the_document_is_openapi_3_0() {
    let parsed: openapiv3::OpenAPI = serde_json::from_str(DOCUMENT)
        .unwrap_or_else(|e| panic!("api/openapi.json is not an OpenAPI 3.0 document: {e}"));
    assert!(parsed.openapi.starts_with("3.0."), "{}", parsed.openapi);
    assert_eq!(parsed.info.version, env!("CARGO_PKG_VERSION"));
    // Whatever the typed model does not know (a misspelt keyword, a `nullable` put
    // where 3.0 ignores it) is dropped when it is written back: nothing may be.
    let back = serde_json::to_value(&parsed).unwrap();
    let mut lost = Vec::new();
    kept(&doc(), &back, "#", &mut lost);
    assert!(
        lost.is_empty(),
        "not OpenAPI 3.0 (unknown to the model): {lost:#?}"
    );
    // The security scheme every operation may need (on TCP) exists.
    let schemes = parsed.components.as_ref().map(|c| &c.security_schemes);
    assert!(schemes.is_some_and(|s| s.contains_key("bearerAuth")));
}

// ---- A schema checker for the subset of JSON Schema the document uses ------------

/// Why `value` does not fit `schema` (`Ok` if it does).
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = deref(doc, schema);
    if value.is_null() {
        return if schema["nullable"] == true {
            Ok(())
        } else {
            Err(format!("{at}: null where {schema} is not nullable"))
        };
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            conforms(doc, s, value, at)?;
        }
    }
    if let Some(one) = schema["oneOf"].as_array() {
        let fits: Vec<_> = one.iter().map(|s| conforms(doc, s, value, at)).collect();
        let n = fits.iter().filter(|f| f.is_ok()).count();
        if n != 1 {
            return Err(format!("{at}: fits {n} of oneOf: {fits:?}"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    let fail = |what: &str| Err(format!("{at}: {value} is not {what}"));
    match schema["type"].as_str() {
        None => {}
        Some("string") if !value.is_string() => return fail("a string"),
        Some("boolean") if !value.is_boolean() => return fail("a boolean"),
        Some("integer") if !(value.is_i64() || value.is_u64()) => return fail("an integer"),
        Some("number") if !value.is_number() => return fail("a number"),
        Some("array") if !value.is_array() => return fail("an array"),
        Some("object") if !value.is_object() => return fail("an object"),
        Some(_) => {}
    }
    if let Some(n) = value.as_f64() {
        if schema["minimum"].as_f64().is_some_and(|m| n < m) {
            return fail(&format!(">= {}", schema["minimum"]));
        }
        if schema["maximum"].as_f64().is_some_and(|m| n > m) {
            return fail(&format!("<= {}", schema["maximum"]));
        }
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            if schema.get("items").is_some() {
                conforms(doc, &schema["items"], item, &format!("{at}/{i}"))?;
            }
        }
    }
    if let Some(map) = value.as_object() {
        for key in schema["required"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap_or_default();
            if !map.contains_key(key) {
                return Err(format!("{at}: required {key:?} missing from {value}"));
            }
        }
        let props = schema["properties"].as_object();
        for (k, v) in map {
            let here = format!("{at}/{k}");
            match (
                props.and_then(|p| p.get(k)),
                &schema["additionalProperties"],
            ) {
                (Some(s), _) => conforms(doc, s, v, &here)?,
                (None, Value::Bool(false)) => return Err(format!("{here}: not in the schema")),
                (None, extra) if extra.is_object() => conforms(doc, extra, v, &here)?,
                // An object schema that lists its properties lists them all.
                (None, _) if props.is_some() && schema["additionalProperties"].is_null() => {
                    return Err(format!("{here}: undocumented property"))
                }
                (None, _) => {}
            }
        }
    }
    Ok(())
}

#[test]
fn the_checker_catches_what_it_should() {
    let doc = doc();
    let record = json!({"$ref": "#/components/schemas/Error"});
    assert!(conforms(
        &doc,
        &record,
        &json!({"error": {"code": "x", "message": "y"}}),
        "#"
    )
    .is_ok());
    assert!(conforms(&doc, &record, &json!({"error": {"code": "x"}}), "#").is_err());
    assert!(conforms(
        &doc,
        &record,
        &json!({"error": {"code": 1, "message": "y"}}),
        "#"
    )
    .is_err());
    let item = json!({"$ref": "#/components/schemas/StreamItem"});
    assert!(conforms(&doc, &item, &json!({"item": "lagged", "missed": 3}), "#").is_ok());
    assert!(conforms(&doc, &item, &json!({"item": "lagged"}), "#").is_err());
    let state = json!({"$ref": "#/components/schemas/State"});
    assert!(conforms(&doc, &state, &json!("sleeping"), "#").is_err());
    // Every example in the document fits its schema.
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if let Some(example) = schema.get("example") {
            if let Err(e) = conforms(&doc, schema, example, name) {
                panic!("the example of {name} does not fit: {e}");
            }
        }
    }
}

// ---- End to end: a real berthd ----------------------------------------------------

/// Check an answer to `method pattern` against the document: its status is listed,
/// its content type is one listed for that status, and a JSON body fits the schema
/// (a streamed body is not read: check its lines with [`check_json`]).
fn check(doc: &Value, method: &str, pattern: &str, conn: &Resp) {
    let op = &doc["paths"][pattern][method.to_ascii_lowercase()];
    let status = conn.status.to_string();
    let resp = op["responses"].get(&status).unwrap_or_else(|| {
        panic!("{conn:?}: status {status} is not documented for {method} {pattern}")
    });
    let resp = deref(doc, resp);
    let Some(content) = resp["content"].as_object() else {
        assert!(
            conn.body.is_empty() && conn.header("content-type").is_none(),
            "{conn:?}: documented without a body"
        );
        return;
    };
    let ctype = conn
        .header("content-type")
        .unwrap_or_else(|| panic!("{conn:?}: no Content-Type"));
    let media = content
        .get(ctype)
        .unwrap_or_else(|| panic!("{conn:?}: Content-Type {ctype} is not documented"));
    for (name, _) in resp["headers"].as_object().into_iter().flatten() {
        assert!(
            conn.header(&name.to_ascii_lowercase()).is_some(),
            "{conn:?}: header {name} is documented but missing"
        );
    }
    if ctype == "application/json" {
        check_json(doc, &media["schema"], &conn.json, &conn.what);
    }
}

fn check_json(doc: &Value, schema: &Value, value: &Value, what: &str) {
    if let Err(e) = conforms(doc, schema, value, "#") {
        panic!("{what}: the answer does not fit the document: {e}\n{value:#}");
    }
}

/// `pattern` with `{id}` filled in.
fn concrete(pattern: &str, id: &str) -> String {
    pattern.replace("{id}", id)
}

#[test]
fn berthd_serves_the_document_and_every_operation_in_it() {
    let doc = doc();
    let scratch = Scratch::new("routes");
    let d = Daemon::start(&scratch, &[], &[]);

    let served = d.call("GET", "/v1/openapi.json", None);
    assert_eq!(served.status, 200, "{served:?}");
    assert_eq!(served.header("content-type"), Some("application/json"));
    assert!(
        served.body == DOCUMENT.as_bytes(),
        "GET /v1/openapi.json differs from api/openapi.json"
    );

    // Every documented operation on a container that does not exist, with an empty
    // JSON object as its body where it takes one: routed (no 404 `no_route`, no 405),
    // and answered as documented.
    let missing = format!("no-such-container-{}", std::process::id());
    for (method, pattern) in operations(&doc) {
        let op = &doc["paths"][&pattern][method.to_ascii_lowercase()];
        let body = op.get("requestBody").map(|_| "{}");
        let path = concrete(&pattern, &missing);
        let conn = d.open(&method, &path, &[], body.map(str::as_bytes));
        let streamed = deref(&doc, &op["responses"]["200"])["content"]
            .get("application/x-ndjson")
            .is_some();
        // A stream that is open is checked by its head.
        let conn = if streamed && conn.status == 200 {
            conn.head()
        } else {
            conn.finish()
        };
        assert_ne!(conn.status, 405, "{conn:?}: documented but not allowed");
        if conn.status == 404 {
            assert_ne!(
                conn.json["error"]["code"], "no_route",
                "{conn:?}: documented but not served"
            );
        }
        check(&doc, &method, &pattern, &conn);
    }

    // And what is not documented is not served.
    let r = d.call("GET", "/v1/nothing-here", None);
    assert_eq!(
        (r.status, r.json["error"]["code"].clone()),
        (404, json!("no_route"))
    );
    let r = d.call("PATCH", "/v1/containers", None);
    assert_eq!(r.status, 405, "{r:?}");
}

/// Poll until `id` is in state `want` (bounded); every answer checked on the way.
fn wait_state(doc: &Value, d: &Daemon, id: &str, want: &str) -> Value {
    wait_state_checked(d, id, want, |r| check(doc, "GET", "/v1/containers/{id}", r))
}

#[test]
fn berthd_answers_as_documented_through_a_containers_life() {
    let doc = doc();
    let scratch = Scratch::new("life");
    let d = Daemon::start(&scratch, &[], &[]);
    let pid = std::process::id();
    let id = format!("oa-{pid}");
    let b = bundle(&scratch.0, &id, &["sleep", "1000"]);
    let c = |p: &str| concrete(p, &id);

    // Create and wait: 200 and a record.
    let body = json!({"id": id, "bundle": b}).to_string();
    let r = d.call(
        "POST",
        "/v1/containers?wait=running&timeout=60",
        Some(&body),
    );
    check(&doc, "POST", "/v1/containers", &r);
    assert_eq!(
        (r.status, r.json["state"].clone()),
        (200, json!("running")),
        "{r:?}"
    );

    // The same id again, and a spec with neither bundle nor spec: documented errors.
    let r = d.call("POST", "/v1/containers", Some(&body));
    check(&doc, "POST", "/v1/containers", &r);
    assert_eq!(r.status, 409, "{r:?}");
    let r = d.call("POST", "/v1/containers", Some(r#"{"id":"x","bogus":1}"#));
    check(&doc, "POST", "/v1/containers", &r);
    assert_eq!(r.status, 400, "{r:?}");

    // A batch with one refused item (a bad id) and one accepted (left created).
    let id2 = format!("oa2-{pid}");
    let b2 = bundle(&scratch.0, &id2, &["sleep", "1000"]);
    let batch = json!({"containers": [
        {"id": "bad id!", "bundle": b2},
        {"id": id2, "bundle": b2, "start": false},
    ]});
    let r = d.call("POST", "/v1/containers/batch", Some(&batch.to_string()));
    check(&doc, "POST", "/v1/containers/batch", &r);
    assert_eq!(r.status, 207, "{r:?}");
    assert_eq!(
        (r.json["accepted"].clone(), r.json["failed"].clone()),
        (json!(1), json!(1))
    );
    wait_state(&doc, &d, &id2, "created");

    for (method, pattern) in [
        ("GET", "/v1/containers"),
        ("GET", "/v1/system"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
    ] {
        let r = d.call(method, pattern, None);
        check(&doc, method, pattern, &r);
        assert_eq!(r.status, 200, "{r:?}");
    }
    let r = d.call("GET", "/v1/containers?state=running&limit=1", None);
    check(&doc, "GET", "/v1/containers", &r);
    assert_eq!(r.json["containers"][0]["id"], json!(id), "{r:?}");
    let r = d.call("PUT", "/v1/system/workers", Some(r#"{"workers":4}"#));
    check(&doc, "PUT", "/v1/system/workers", &r);
    assert_eq!(
        (r.status, r.json["workers"].clone()),
        (200, json!(4)),
        "{r:?}"
    );
    let r = d.call("PUT", "/v1/system/workers", Some(r#"{"workers":0}"#));
    check(&doc, "PUT", "/v1/system/workers", &r);
    assert_eq!(r.status, 422, "{r:?}");

    let r = d.call("GET", &c("/v1/containers/{id}/stats"), None);
    check(&doc, "GET", "/v1/containers/{id}/stats", &r);
    assert_eq!(r.status, 200, "{r:?}");

    let exec = json!({"args": ["sh", "-c", "echo documented"]}).to_string();
    let r = d.call("POST", &c("/v1/containers/{id}/exec"), Some(&exec));
    check(&doc, "POST", "/v1/containers/{id}/exec", &r);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["output"], "documented\n", "{r:?}");
    let exec = json!({"args": ["true"], "wait": false}).to_string();
    let r = d.call("POST", &c("/v1/containers/{id}/exec"), Some(&exec));
    check(&doc, "POST", "/v1/containers/{id}/exec", &r);
    assert_eq!(r.status, 202, "{r:?}");

    for (action, status) in [("pause", 200), ("resume", 200)] {
        let pattern = format!("/v1/containers/{{id}}/{action}");
        let r = d.call("POST", &c(&pattern), None);
        check(&doc, "POST", &pattern, &r);
        assert_eq!(r.status, status, "{r:?}");
    }
    let r = d.call("POST", &c("/v1/containers/{id}/resume"), None);
    check(&doc, "POST", "/v1/containers/{id}/resume", &r);
    assert_eq!(r.status, 409, "{r:?}");
    let r = d.call("POST", &concrete("/v1/containers/{id}/start", &id2), None);
    check(&doc, "POST", "/v1/containers/{id}/start", &r);
    assert_eq!(r.status, 202, "{r:?}");

    let r = d.call("GET", &c("/v1/containers/{id}/logs?tail=5"), None);
    check(&doc, "GET", "/v1/containers/{id}/logs", &r);
    assert_eq!(r.status, 200, "{r:?}");
    let r = d.call("DELETE", &c("/v1/containers/{id}"), None);
    check(&doc, "DELETE", "/v1/containers/{id}", &r);
    assert_eq!(r.status, 409, "{r:?}");
    let r = d.call(
        "POST",
        &c("/v1/containers/{id}/kill"),
        Some(r#"{"signal":"NOPE"}"#),
    );
    check(&doc, "POST", "/v1/containers/{id}/kill", &r);
    assert_eq!(r.status, 422, "{r:?}");
    let r = d.call(
        "POST",
        &c("/v1/containers/{id}/kill"),
        Some(r#"{"signal":"KILL"}"#),
    );
    check(&doc, "POST", "/v1/containers/{id}/kill", &r);
    assert_eq!(r.status, 202, "{r:?}");
    wait_state(&doc, &d, &id, "stopped");
    let r = d.call("GET", &c("/v1/containers/{id}/stats"), None);
    check(&doc, "GET", "/v1/containers/{id}/stats", &r);
    assert_eq!(r.status, 409, "{r:?}");

    // The events of the first container, from the start: every line fits, in order,
    // up to its stop.
    let mut ev = d.open("GET", &format!("/v1/events?since=1&id={id}"), &[], None);
    check(&doc, "GET", "/v1/events", &ev.head());
    assert_eq!(ev.status, 200, "{ev:?}");
    let item_schema = &doc["paths"]["/v1/events"]["get"]["responses"]["200"]["content"]
        ["application/x-ndjson"]["schema"];
    let mut seen = Vec::new();
    while !seen.contains(&json!("stopped")) {
        let chunk = ev
            .chunk()
            .unwrap_or_else(|| panic!("the event stream ended: {seen:?}"));
        for line in String::from_utf8_lossy(&chunk).lines() {
            let item: Value = serde_json::from_str(line).unwrap();
            check_json(&doc, item_schema, &item, "GET /v1/events");
            seen.push(item["state"].clone());
        }
    }
    drop(ev);

    let r = d.call("DELETE", &c("/v1/containers/{id}"), None);
    check(&doc, "DELETE", "/v1/containers/{id}", &r);
    assert_eq!(r.status, 204, "{r:?}");
    let r = d.call(
        "DELETE",
        &concrete("/v1/containers/{id}?force=true", &id2),
        None,
    );
    check(&doc, "DELETE", "/v1/containers/{id}", &r);
    assert_eq!(r.status, 204, "{r:?}");
}

//! The OpenAPI document (`api/berthd/openapi.json`) kept true: it lists exactly the server's
//! routes, every reference in it resolves, it is a well-formed OpenAPI 3.0 document, a
//! real berthd serves it and answers every operation it lists, and what berthd answers
//! (status, content type, JSON body) is what the document says, for errors and for the
//! whole life of a real container.

use berth_testkit::daemon as harness;

use std::collections::{BTreeMap, BTreeSet};

use berth_testkit::bundle;
use berth_testkit::image::ImageBuilder;
use berth_testkit::registry::{Mode, Registry};
use berthd::routes::openapi::DOCUMENT;
use berthd::routes::ROUTES;
use harness::{wait_state_checked, Daemon, Resp, Scratch};
use serde_json::{json, Value};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn doc() -> Value {
    serde_json::from_str(DOCUMENT).expect("api/berthd/openapi.json is not valid JSON")
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
        .map(|r| (r.method.to_string(), r.pattern.to_string()))
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
        "routes in ROUTES (api/berthd/src/routes/mod.rs) missing from api/berthd/openapi.json: {undocumented:?}; \
         operations in api/berthd/openapi.json missing from ROUTES: {unserved:?}"
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
        .unwrap_or_else(|e| panic!("api/berthd/openapi.json is not an OpenAPI 3.0 document: {e}"));
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

/// Whether the concrete `path` fits `pattern` as the server's route table has it
/// (`{id}`: any one segment; `{name}`, last: the rest of the path, one segment or more).
fn fits(pattern: &str, path: &str) -> bool {
    let (p, c): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    let rest = pattern.ends_with("/{name}");
    let length_fits = if rest {
        c.len() >= p.len()
    } else {
        c.len() == p.len()
    };
    length_fits
        && p.iter()
            .zip(&c)
            .all(|(p, c)| p == c || *p == "{id}" || (*p == "{name}" && !c.is_empty()))
}

/// `pattern` with `{id}` (a container) or `{name}` (an image, slashes allowed) filled in.
fn concrete(pattern: &str, id: &str) -> String {
    pattern.replace("{id}", id).replace("{name}", id)
}

#[test]
fn the_test_fits_paths_as_the_server_routes_them() {
    assert!(fits("/v1/containers/{id}", "/v1/containers/batch"));
    assert!(!fits("/v1/containers/{id}", "/v1/containers/a/b"));
    assert!(fits("/v1/images/{name}", "/v1/images/import"));
    assert!(fits("/v1/images/{name}", "/v1/images/127.0.0.1:5000/a/b:1"));
    assert!(!fits("/v1/images/{name}", "/v1/images"));
    assert!(!fits("/v1/images/pull", "/v1/images/pull/x"));
    assert_eq!(concrete("/v1/images/{name}", "a/b:1"), "/v1/images/a/b:1");
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
        "GET /v1/openapi.json differs from api/berthd/openapi.json"
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
    // Every documented path answers a method it lacks with 405 and an `Allow` header
    // listing exactly the methods the document gives it (RFC 9110).
    // (`/v1/containers/batch` also fits `/v1/containers/{id}`: its methods count too.)
    let all = operations(&doc);
    for path in doc["paths"].as_object().unwrap().keys() {
        let path = concrete(path, &missing);
        let documented: BTreeSet<String> = all
            .iter()
            .filter(|(_, p)| fits(p, &path))
            .map(|(m, _)| m.clone())
            .collect();
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            if documented.contains(method) {
                continue;
            }
            let r = d.call(method, &path, None);
            assert_eq!(r.status, 405, "{r:?}");
            assert_eq!(r.json["error"]["code"], "method_not_allowed", "{r:?}");
            let allow = r
                .header("allow")
                .unwrap_or_else(|| panic!("{r:?}: no Allow"));
            let allowed: BTreeSet<String> = allow.split(',').map(|m| m.trim().to_owned()).collect();
            assert_eq!(allowed, documented, "{r:?}");
        }
    }
}

/// Documented statuses no request to a sound berthd can bring about, and why:
/// `(method, path, status, why)`, `*` for any. Everything else the document lists is
/// reached by [`berthd_answers_every_documented_status_as_documented`].
const NOT_REACHED: &[(&str, &str, &str, &str)] = &[
    (
        "*",
        "*",
        "500",
        "an internal failure: no request makes a sound daemon fail",
    ),
    (
        "*",
        "/v1/containers/{id}*",
        "502",
        "a shim that answers nonsense or fails: needs a broken shim",
    ),
    (
        "*",
        "*",
        "429",
        "a full start queue comes only by chance in a burst (daemon.rs tries it), a full \
         control queue needs a stuck shim",
    ),
    (
        "*",
        "/v1/containers/{id}*",
        "504",
        "a shim silent for 30 s, or a stop that times out (exec's own 504 is reached)",
    ),
    (
        "POST",
        "/v1/containers",
        "503",
        "only between SIGTERM and the listener closing: a race, not a request",
    ),
    (
        "GET",
        "/metrics",
        "404",
        "berthd always installs the exporter; 404 is for an App built without one",
    ),
    (
        "GET",
        "/v1/images",
        "404",
        "only `images_disabled`: berthd always opens its images root (an App built \
         without images answers it; POST /v1/containers' 422 `images_disabled` likewise)",
    ),
    (
        "POST",
        "/v1/images/prune",
        "404",
        "only `images_disabled`: berthd always opens its images root",
    ),
    (
        "POST",
        "/v1/images/import",
        "404",
        "only `images_disabled`: berthd always opens its images root",
    ),
    (
        "*",
        "/v1/networks",
        "404",
        "only `networks_disabled`: berthd always opens its networks",
    ),
];

/// Whether a [`NOT_REACHED`] path (`*`: any; `…*`: any that starts so) covers `path`.
fn covers(listed: &str, path: &str) -> bool {
    match listed.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => listed == path,
    }
}

/// Whether `(method, path, status)` is in [`NOT_REACHED`].
fn not_reached(method: &str, path: &str, status: &str) -> bool {
    NOT_REACHED
        .iter()
        .any(|(m, p, s, _)| (*m == "*" || *m == method) && covers(p, path) && *s == status)
}

/// Every `(METHOD, path, status)` the document lists.
fn documented_statuses(doc: &Value) -> BTreeSet<(String, String, String)> {
    operations(doc)
        .into_iter()
        .flat_map(|(m, p)| {
            let op = &doc["paths"][&p][m.to_ascii_lowercase()];
            let statuses: Vec<String> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            statuses.into_iter().map(move |s| (m.clone(), p.clone(), s))
        })
        .collect()
}

/// The query string of an operation's required query parameters, each set to its
/// example (or `x`): empty when it has none.
fn required_query(op: &Value) -> String {
    let pairs: Vec<String> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .map(|p| {
            let value = p["example"].as_str().unwrap_or("x");
            format!("{}={value}", p["name"].as_str().unwrap())
        })
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

/// Answers checked against the document, remembering which documented statuses came.
struct Checker {
    doc: Value,
    seen: std::cell::RefCell<BTreeSet<(String, String, String)>>,
}

impl Checker {
    fn new() -> Self {
        Checker {
            doc: doc(),
            seen: Default::default(),
        }
    }

    /// [`check`] the answer and note its status.
    fn check(&self, method: &str, pattern: &str, r: &Resp) {
        check(&self.doc, method, pattern, r);
        let key = (method.to_owned(), pattern.to_owned(), r.status.to_string());
        self.seen.borrow_mut().insert(key);
    }

    /// [`Checker::check`], and the status must be `status`.
    fn expect(&self, method: &str, pattern: &str, r: &Resp, status: u16) {
        self.check(method, pattern, r);
        assert_eq!(r.status, status, "{r:?}");
    }

    /// The operation `method pattern` of the document.
    fn op(&self, method: &str, pattern: &str) -> &Value {
        &self.doc["paths"][pattern][method.to_ascii_lowercase()]
    }

    /// The JSON request body schema of an operation (`None`: it takes no body, or one
    /// of another type, as import's tar).
    fn body_schema(&self, method: &str, pattern: &str) -> Option<&Value> {
        let body = self.op(method, pattern).get("requestBody")?;
        let schema = body["content"].get("application/json")?;
        Some(deref(&self.doc, &schema["schema"]))
    }

    /// Poll until `id` is in state `want` (bounded); every answer checked on the way.
    fn wait_state(&self, d: &Daemon, id: &str, want: &str) -> Value {
        wait_state_checked(d, id, want, |r| self.check("GET", "/v1/containers/{id}", r))
    }

    /// Fail for every documented status not reached and not in [`NOT_REACHED`].
    fn assert_all_reached(&self) {
        let documented = documented_statuses(&self.doc);
        let seen = self.seen.borrow();
        let missed: Vec<String> = documented
            .iter()
            .filter(|k| !seen.contains(*k) && !not_reached(&k.0, &k.1, &k.2))
            .map(|(m, p, s)| format!("{m} {p} {s}"))
            .collect();
        assert!(
            missed.is_empty(),
            "documented statuses no request reached (reach them, or list them in \
             NOT_REACHED with why): {missed:#?}"
        );
        for (m, p, s, why) in NOT_REACHED {
            assert!(
                documented.iter().any(|k| not_reached(&k.0, &k.1, &k.2)
                    && (*m == "*" || k.0 == *m)
                    && covers(p, &k.1)
                    && k.2 == *s),
                "NOT_REACHED lists {m} {p} {s} ({why}), which the document does not"
            );
        }
    }
}

/// The operations that take a body, with `pattern` and schema.
fn body_operations(ck: &Checker) -> Vec<(String, String)> {
    operations(&ck.doc)
        .into_iter()
        .filter(|(m, p)| ck.body_schema(m, p).is_some())
        .collect()
}

/// A copy of a create request example that runs here: each item gets a fresh id and a
/// real bundle (or rootfs for an inline spec) in `dir`.
fn realize(example: &Value, dir: &std::path::Path, n: &mut usize) -> Value {
    let mut v = example.clone();
    if let Some(items) = v.get_mut("containers").and_then(Value::as_array_mut) {
        for item in items {
            *item = realize(item, dir, n);
        }
        return v;
    }
    *n += 1;
    let id = format!("ex{n}-{}", std::process::id());
    v["id"] = json!(id);
    if v.get("bundle").is_some() {
        v["bundle"] = json!(bundle(dir, &id, &["sleep", "1000"]));
    }
    if v.get("spec").is_some() {
        v["rootfs"] = json!(berth_testkit::rootfs(dir));
    }
    v
}

/// 401 and 403 for every operation: over TCP without the token, and over an open
/// loopback listener from a web page.
fn refusals_on_tcp(ck: &Checker) {
    let guarded = Scratch::new("oa-token");
    let token_file = guarded.0.join("token");
    std::fs::write(&token_file, "oa-t0ken").unwrap();
    let addr = format!("127.0.0.1:{}", harness::free_port());
    let _dt = Daemon::start(
        &guarded,
        &["--tcp", &addr, "--token-file", token_file.to_str().unwrap()],
        &[],
    );
    let open = Scratch::new("oa-open");
    let addr_open = format!("127.0.0.1:{}", harness::free_port());
    let _do = Daemon::start(&open, &["--tcp", &addr_open, "--tcp-insecure"], &[]);
    for (method, pattern) in operations(&ck.doc) {
        let path = concrete(&pattern, "no-such");
        let r = harness::call_tcp(&addr, &method, &path, &[]);
        ck.expect(&method, &pattern, &r, 401);
        let r = harness::call_tcp(&addr_open, &method, &path, &["Origin: http://evil.example"]);
        ck.expect(&method, &pattern, &r, 403);
    }
}

/// 400 (malformed JSON), 413 (too large: said by `Content-Length`) and 408 (a body
/// that never comes; the daemon allows 1 s) for every operation with a body, and a
/// `null` for each top-level property: 400 unless the schema says `nullable`.
fn body_errors(ck: &Checker, d: &Daemon, registry: &str) {
    for (method, pattern) in body_operations(ck) {
        let path = concrete(&pattern, "no-such");
        let r = d.call_with(&method, &path, &[], Some(b"{"));
        ck.expect(&method, &pattern, &r, 400);
        assert_eq!(r.json["error"]["code"], "malformed_json", "{r:?}");
        let big = format!("Content-Length: {}", (1 << 20) + 1);
        let r = d.call_with(
            &method,
            &path,
            &["Content-Type: application/json", &big],
            None,
        );
        ck.expect(&method, &pattern, &r, 413);
        let short = ["Content-Type: application/json", "Content-Length: 10"];
        let r = d.call_with(&method, &path, &short, None);
        ck.expect(&method, &pattern, &r, 408);
        let schema = ck.body_schema(&method, &pattern).unwrap();
        let example = local(&schema["example"], registry);
        // The required properties (from the example), and the one under test.
        let mut base = json!({});
        for key in schema["required"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap();
            base[key] = example[key].clone();
        }
        for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
            let mut body = base.clone();
            body[name] = Value::Null;
            let r = d.call(&method, &path, Some(&body.to_string()));
            ck.check(&method, &pattern, &r);
            let nullable = deref(&ck.doc, prop)["nullable"] == true;
            assert_eq!(
                r.status == 400,
                !nullable,
                "{name}: null, nullable {nullable}: {r:?}"
            );
        }
    }
}

/// The registry the document's examples name.
const EXAMPLE_REGISTRY: &str = "127.0.0.1:5000";

/// `example` with the registry it names replaced by the test's `registry`.
fn local(example: &Value, registry: &str) -> Value {
    let text = example.to_string().replace(EXAMPLE_REGISTRY, registry);
    serde_json::from_str(&text).unwrap()
}

/// The body of `schema`'s example with `name` set to `value`.
fn body_with(schema: &Value, name: &str, value: Value) -> String {
    let mut body = schema["example"].clone();
    body[name] = value;
    body.to_string()
}

/// For every top-level integer or array property with documented limits: a value
/// just past each limit, and one far past it (10^30), is 422; a value of another type
/// is 400. `target` names the container the `{id}` routes act on (running: so the
/// body is judged, not the container's absence).
fn limits(ck: &Checker, d: &Daemon, target: &str) {
    for (method, pattern) in body_operations(ck) {
        let path = concrete(&pattern, target);
        let schema = ck.body_schema(&method, &pattern).unwrap();
        for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
            let prop = deref(&ck.doc, prop);
            let int = prop["oneOf"]
                .as_array()
                .and_then(|o| o.iter().find(|s| s["type"] == "integer"))
                .unwrap_or(prop);
            let mut bad = Vec::new();
            if int["type"] == "integer" {
                if let Some(min) = int["minimum"].as_i64() {
                    bad.push(json!(min - 1));
                    bad.push(serde_json::from_str::<Value>("-1e30").unwrap());
                }
                if let Some(max) = int["maximum"].as_i64() {
                    bad.push(json!(max + 1));
                    bad.push(serde_json::from_str::<Value>("1e30").unwrap());
                    bad.push(serde_json::from_str::<Value>("99999999999999999999999").unwrap());
                }
                let r = d.call(&method, &path, Some(&body_with(schema, name, json!(9.5))));
                ck.expect(&method, &pattern, &r, 400);
            }
            if prop["type"] == "array" && prop["minItems"] == 1 {
                bad.push(json!([]));
            }
            if let Some(max) = prop["maxItems"].as_u64() {
                bad.push(json!(vec![json!({}); max as usize + 1]));
            }
            for value in bad {
                let r = d.call(&method, &path, Some(&body_with(schema, name, value)));
                ck.expect(&method, &pattern, &r, 422);
            }
        }
    }
    // A nested limit: a uid past u32.
    let exec = json!({"args": ["true"], "user": {"uid": 4294967296u64, "gid": 0}});
    let r = d.call(
        "POST",
        &concrete("/v1/containers/{id}/exec", target),
        Some(&exec.to_string()),
    );
    ck.expect("POST", "/v1/containers/{id}/exec", &r, 422);
}

/// Every request body example in the document, posted (creates made to run here:
/// fresh ids, real bundles; image references on the test's `registry`) and accepted on
/// the running `target`; the inline spec example runs. Operations go in path order: the exec example before the kill.
fn examples(ck: &Checker, d: &Daemon, dir: &std::path::Path, target: &str, registry: &str) {
    let mut n = 0;
    for (method, pattern) in body_operations(ck) {
        let schema = ck.body_schema(&method, &pattern).unwrap();
        let example = schema
            .get("example")
            .unwrap_or_else(|| panic!("{method} {pattern}: the request body has no example"));
        let body = if pattern.starts_with("/v1/containers")
            && method == "POST"
            && !pattern.contains("{id}")
        {
            realize(example, dir, &mut n)
        } else {
            local(example, registry)
        };
        let path = concrete(&pattern, target);
        let r = d.call(&method, &path, Some(&body.to_string()));
        ck.check(&method, &pattern, &r);
        assert!(
            (200..300).contains(&r.status),
            "the example {body} of {method} {pattern}: {r:?}"
        );
    }
    let inline = json!({"id": "x", "spec": ck.doc["components"]["schemas"]["OciSpec"]["example"], "rootfs": "x"});
    let body = realize(&inline, dir, &mut n);
    let r = d.call(
        "POST",
        "/v1/containers?wait=running&timeout=60",
        Some(&body.to_string()),
    );
    ck.expect("POST", "/v1/containers", &r, 200);
    assert_eq!(r.json["state"], "running", "the OciSpec example: {r:?}");
}

/// The network routes' answers. Definitions only: no container joins a network here
/// (this daemon runs in the machine's own namespace; tests/network.rs attaches
/// containers inside namespaces of its own).
fn network_life(ck: &Checker, d: &Daemon) {
    let (list, one) = ("/v1/networks", "/v1/networks/{id}");
    // The example's name is free for examples() (body_errors may have made it).
    let r = d.call("DELETE", "/v1/networks/front", None);
    ck.check("DELETE", one, &r);
    let body = r#"{"name":"oa-net","subnet":"10.213.0.0/24","labels":{"a":"b"}}"#;
    let r = d.call("POST", list, Some(body));
    ck.expect("POST", list, &r, 201);
    let id = r.json["id"].as_str().unwrap().to_owned();
    ck.expect("POST", list, &d.call("POST", list, Some(body)), 409);
    let bad = r#"{"name":"oa-bad","subnet":"10.213.0.0/33"}"#;
    ck.expect("POST", list, &d.call("POST", list, Some(bad)), 422);
    let r = d.call("GET", list, None);
    ck.expect("GET", list, &r, 200);
    assert!(
        r.json
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == "oa-net"),
        "{r:?}"
    );
    ck.expect("GET", one, &d.call("GET", "/v1/networks/oa-net", None), 200);
    ck.expect(
        "GET",
        one,
        &d.call("GET", &format!("/v1/networks/{}", &id[..12]), None),
        200,
    );
    ck.expect(
        "GET",
        one,
        &d.call("GET", "/v1/networks/oa-none", None),
        404,
    );
    ck.expect(
        "DELETE",
        one,
        &d.call("DELETE", "/v1/networks/berth0", None),
        409,
    );
    ck.expect(
        "DELETE",
        one,
        &d.call("DELETE", "/v1/networks/oa-net", None),
        200,
    );
    ck.expect(
        "DELETE",
        one,
        &d.call("DELETE", "/v1/networks/oa-net", None),
        404,
    );
    // A container on a network that does not exist.
    let r = d.call(
        "POST",
        "/v1/containers",
        Some(r#"{"image":"busybox","network":"oa-none"}"#),
    );
    ck.expect("POST", "/v1/containers", &r, 404);
    assert_eq!(r.json["error"]["code"], "network_not_found", "{r:?}");
}

/// An import's own errors: junk is 400 `invalid_archive`, an archive that stops
/// coming is 408 `body_timeout` (the daemon allows 1 s of silence).
fn import_errors(ck: &Checker, d: &Daemon) {
    let (method, pattern) = ("POST", "/v1/images/import");
    let tar = "Content-Type: application/x-tar";
    let r = d.call_with(method, pattern, &[tar], Some(b"not a tar at all"));
    ck.expect(method, pattern, &r, 400);
    assert_eq!(r.json["error"]["code"], "invalid_archive", "{r:?}");
    let r = d.call_with(method, pattern, &[tar, "Content-Length: 10240"], None);
    ck.expect(method, pattern, &r, 408);
    assert_eq!(r.json["error"]["code"], "body_timeout", "{r:?}");
}

/// Pull `reference`: the status must be `status`; a stream's lines, each checked
/// against the document.
fn pull(ck: &Checker, d: &Daemon, reference: &str, status: u16) -> Vec<Value> {
    let (method, pattern) = ("POST", "/v1/images/pull");
    let body = json!({ "reference": reference }).to_string();
    let r = d.call(method, pattern, Some(&body));
    ck.expect(method, pattern, &r, status);
    let schema =
        &ck.op(method, pattern)["responses"]["200"]["content"]["application/x-ndjson"]["schema"];
    let lines: Vec<Value> = if status == 200 {
        r.text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    } else {
        Vec::new()
    };
    for line in &lines {
        check_json(&ck.doc, schema, line, "POST /v1/images/pull (a line)");
    }
    lines
}

/// Each way a pull fails, on real registries: a bad reference, a missing tag, refused
/// credentials, nobody listening, a registry that never answers (`--registry-timeout 1`).
fn pull_failures(ck: &Checker, d: &Daemon, reg: &Registry) {
    pull(ck, d, "Bad Ref!!", 400);
    pull(ck, d, &format!("{}/test/busybox:nope", reg.host()), 404);
    let basic = Registry::start(Mode::Basic);
    pull(ck, d, &format!("{}/test/x:1", basic.host()), 422);
    let down = format!("127.0.0.1:{}/x/y:1", berth_testkit::registry::free_port());
    pull(ck, d, &down, 502);
    let stalled = berth_testkit::http::Server::start(|_, _| {
        std::thread::sleep(std::time::Duration::from_secs(5))
    });
    pull(ck, d, &format!("{}/x/y:1", stalled.host()), 504);
}

/// An image's whole life on `reg` (which holds `test/busybox:latest`), every answer
/// checked: pull with progress, list, inspect by name and id, save, a container from
/// it (so removal is refused), removal, import of the saved archive, prune, and the
/// image events all that sends.
fn image_life(ck: &Checker, d: &Daemon, reg: &Registry) {
    let name = format!("{}/test/busybox:latest", reg.host());
    let mut events = d.open("GET", "/v1/events?type=image", &[], None);
    ck.check("GET", "/v1/events", &events.head());
    pull_failures(ck, d, reg);
    let lines = pull(ck, d, &name, 200);
    let done = lines.last().unwrap();
    assert_eq!(done["status"], "done", "{lines:?}");
    let id = done["id"].as_str().unwrap().to_owned();

    let r = d.call("GET", "/v1/images", None);
    ck.expect("GET", "/v1/images", &r, 200);
    assert!(r.text.contains(&name), "{r:?}");
    for key in [&name, &id] {
        let r = d.call("GET", &concrete("/v1/images/{name}", key), None);
        ck.expect("GET", "/v1/images/{name}", &r, 200);
        assert_eq!((&r.json["name"], &r.json["id"]), (&json!(name), &json!(id)));
    }
    let save = |names: &[&str], status| {
        let body = json!({ "names": names }).to_string();
        let r = d.call("POST", "/v1/images/save", Some(&body));
        ck.expect("POST", "/v1/images/save", &r, status);
        r
    };
    let saved = save(&[&name], 200);
    save(&["no/such:1"], 404);

    // A container of the image: removing the image is refused while it exists.
    let cid = format!("oa-img-{}", std::process::id());
    let run = json!({"id": cid, "image": name, "args": ["sleep", "1000"]}).to_string();
    let r = d.call("POST", "/v1/containers?wait=running&timeout=60", Some(&run));
    ck.expect("POST", "/v1/containers", &r, 200);
    assert_eq!(r.json["state"], "running", "{r:?}");
    let never = json!({"id": "never", "image": "no/such:1", "pull": "never"}).to_string();
    let r = d.call("POST", "/v1/containers", Some(&never));
    ck.expect("POST", "/v1/containers", &r, 404);
    assert_eq!(r.json["error"]["code"], "image_not_found", "{r:?}");
    let image = concrete("/v1/images/{name}", &name);
    let r = d.call("DELETE", &image, None);
    ck.expect("DELETE", "/v1/images/{name}", &r, 409);
    let r = d.call("DELETE", &format!("{image}?force=maybe"), None);
    ck.expect("DELETE", "/v1/images/{name}", &r, 400);
    let r = d.call("DELETE", &format!("/v1/containers/{cid}?force=true"), None);
    ck.expect("DELETE", "/v1/containers/{id}", &r, 204);
    let r = d.call("DELETE", &image, None);
    ck.expect("DELETE", "/v1/images/{name}", &r, 200);
    assert_eq!(r.json["id"], json!(id), "{r:?}");

    // The saved archive brings it back.
    let tar = ["Content-Type: application/x-tar"];
    let r = d.call_with("POST", "/v1/images/import", &tar, Some(&saved.body));
    ck.expect("POST", "/v1/images/import", &r, 200);
    assert_eq!(r.json["images"][0]["name"], json!(name), "{r:?}");
    let r = d.call("POST", "/v1/images/prune", None);
    ck.expect("POST", "/v1/images/prune", &r, 200);

    // The image events, each as documented: pulled, deleted, imported.
    let schema = &ck.op("GET", "/v1/events")["responses"]["200"]["content"]["application/x-ndjson"]
        ["schema"];
    let mut seen = Vec::new();
    while !seen.contains(&json!("imported")) {
        let chunk = events
            .chunk()
            .unwrap_or_else(|| panic!("the event stream ended: {seen:?}"));
        for line in String::from_utf8_lossy(&chunk).lines() {
            let item: Value = serde_json::from_str(line).unwrap();
            check_json(&ck.doc, schema, &item, "GET /v1/events?type=image");
            seen.push(item["action"].clone());
        }
    }
    let want = [json!("pulled"), json!("deleted"), json!("imported")];
    assert!(seen.ends_with(&want), "{seen:?}");
}

#[test]
fn berthd_answers_every_documented_status_as_documented() {
    let ck = Checker::new();
    let doc = &ck.doc;
    refusals_on_tcp(&ck);
    let scratch = Scratch::new("life");
    // The image the document's examples name, on a real registry here.
    let reg = Registry::start(Mode::Open);
    ImageBuilder::busybox().push(&reg, "test/busybox:latest");
    let d = Daemon::start(
        &scratch,
        &["--body-timeout", "1", "--registry-timeout", "1"],
        &[],
    );
    body_errors(&ck, &d, &reg.host());
    import_errors(&ck, &d);
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
    ck.check("POST", "/v1/containers", &r);
    assert_eq!(
        (r.status, r.json["state"].clone()),
        (200, json!("running")),
        "{r:?}"
    );

    // The same id again, and a spec with neither bundle nor spec: documented errors.
    let r = d.call("POST", "/v1/containers", Some(&body));
    ck.check("POST", "/v1/containers", &r);
    assert_eq!(r.status, 409, "{r:?}");
    let r = d.call("POST", "/v1/containers", Some(r#"{"id":"x","bogus":1}"#));
    ck.check("POST", "/v1/containers", &r);
    assert_eq!(r.status, 400, "{r:?}");
    let r = d.call(
        "POST",
        "/v1/containers",
        Some(r#"{"id":"bad id!","bundle":"/x"}"#),
    );
    ck.expect("POST", "/v1/containers", &r, 422);

    // Every operation on a container that does not exist (with its example body): 404.
    for (method, pattern) in operations(doc)
        .into_iter()
        .filter(|(_, p)| p.contains("{id}"))
    {
        let body = ck
            .body_schema(&method, &pattern)
            .map(|s| s["example"].to_string());
        let path = concrete(&pattern, "no-such") + &required_query(ck.op(&method, &pattern));
        let r = d.call(&method, &path, body.as_deref());
        ck.expect(&method, &pattern, &r, 404);
    }
    // Every operation on an image that does not exist (a name with slashes): 404.
    for (method, pattern) in operations(doc)
        .into_iter()
        .filter(|(_, p)| p.contains("{name}"))
    {
        let path = concrete(&pattern, "no/such/image:1");
        let r = d.call(&method, &path, None);
        ck.expect(&method, &pattern, &r, 404);
        assert_eq!(r.json["error"]["code"], "image_not_found", "{r:?}");
    }
    // A literal route's word as an image name is an image name.
    let r = d.call("GET", "/v1/images/import", None);
    ck.expect("GET", "/v1/images/{name}", &r, 404);
    assert_eq!(r.json["error"]["code"], "image_not_found", "{r:?}");
    // Bad query strings: 400.
    for (method, path, pattern) in [
        ("GET", "/v1/events?since=soon".to_owned(), "/v1/events"),
        ("GET", "/v1/containers?limit=0".to_owned(), "/v1/containers"),
        (
            "GET",
            c("/v1/containers/{id}/logs?tail=many"),
            "/v1/containers/{id}/logs",
        ),
        (
            "DELETE",
            c("/v1/containers/{id}?force=maybe"),
            "/v1/containers/{id}",
        ),
    ] {
        let r = d.call(method, &path, None);
        ck.expect(method, pattern, &r, 400);
    }
    // The limits of every body, judged on a running container.
    limits(&ck, &d, &id);
    // An exec that outlives its timeout: 504.
    let exec = json!({"args": ["sleep", "5"], "timeout": 1}).to_string();
    let r = d.call("POST", &c("/v1/containers/{id}/exec"), Some(&exec));
    ck.expect("POST", "/v1/containers/{id}/exec", &r, 504);

    // A batch with one refused item (a bad id) and one accepted (left created).
    let id2 = format!("oa2-{pid}");
    let b2 = bundle(&scratch.0, &id2, &["sleep", "1000"]);
    let batch = json!({"containers": [
        {"id": "bad id!", "bundle": b2},
        {"id": id2, "bundle": b2, "start": false},
    ]});
    let r = d.call("POST", "/v1/containers/batch", Some(&batch.to_string()));
    ck.check("POST", "/v1/containers/batch", &r);
    assert_eq!(r.status, 207, "{r:?}");
    assert_eq!(
        (r.json["accepted"].clone(), r.json["failed"].clone()),
        (json!(1), json!(1))
    );
    ck.wait_state(&d, &id2, "created");

    for (method, pattern) in [
        ("GET", "/v1/openapi.json"),
        ("GET", "/v1/containers"),
        ("GET", "/v1/system"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
    ] {
        let r = d.call(method, pattern, None);
        ck.check(method, pattern, &r);
        assert_eq!(r.status, 200, "{r:?}");
    }
    let r = d.call("GET", "/v1/containers?state=running&limit=1", None);
    ck.check("GET", "/v1/containers", &r);
    assert_eq!(r.json["containers"][0]["id"], json!(id), "{r:?}");
    let r = d.call("PUT", "/v1/system/workers", Some(r#"{"workers":4}"#));
    ck.check("PUT", "/v1/system/workers", &r);
    assert_eq!(
        (r.status, r.json["workers"].clone()),
        (200, json!(4)),
        "{r:?}"
    );
    let r = d.call("PUT", "/v1/system/workers", Some(r#"{"workers":0}"#));
    ck.check("PUT", "/v1/system/workers", &r);
    assert_eq!(r.status, 422, "{r:?}");

    let r = d.call("GET", &c("/v1/containers/{id}/stats"), None);
    ck.check("GET", "/v1/containers/{id}/stats", &r);
    assert_eq!(r.status, 200, "{r:?}");

    let exec = json!({"args": ["sh", "-c", "echo documented"]}).to_string();
    let r = d.call("POST", &c("/v1/containers/{id}/exec"), Some(&exec));
    ck.check("POST", "/v1/containers/{id}/exec", &r);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["output"], "documented\n", "{r:?}");
    let exec = json!({"args": ["true"], "wait": false, "exec_id": "docs"}).to_string();
    let r = d.call("POST", &c("/v1/containers/{id}/exec"), Some(&exec));
    ck.check("POST", "/v1/containers/{id}/exec", &r);
    assert_eq!(r.status, 202, "{r:?}");
    // Its result by name (polled until it has exited), and a fetch without a name.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = d.call("GET", &c("/v1/containers/{id}/exec?exec_id=docs"), None);
        ck.check("GET", "/v1/containers/{id}/exec", &r);
        assert_eq!(r.status, 200, "{r:?}");
        if r.json["exit_code"] == json!(0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{r:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = d.call("GET", &c("/v1/containers/{id}/exec"), None);
    ck.expect("GET", "/v1/containers/{id}/exec", &r, 400);

    for (action, status) in [("pause", 200), ("resume", 200)] {
        let pattern = format!("/v1/containers/{{id}}/{action}");
        let r = d.call("POST", &c(&pattern), None);
        ck.check("POST", &pattern, &r);
        assert_eq!(r.status, status, "{r:?}");
    }
    let r = d.call("POST", &c("/v1/containers/{id}/resume"), None);
    ck.check("POST", "/v1/containers/{id}/resume", &r);
    assert_eq!(r.status, 409, "{r:?}");
    let r = d.call("POST", &concrete("/v1/containers/{id}/start", &id2), None);
    ck.check("POST", "/v1/containers/{id}/start", &r);
    assert_eq!(r.status, 202, "{r:?}");

    let r = d.call("GET", &c("/v1/containers/{id}/logs?tail=5"), None);
    ck.check("GET", "/v1/containers/{id}/logs", &r);
    assert_eq!(r.status, 200, "{r:?}");
    let r = d.call("DELETE", &c("/v1/containers/{id}"), None);
    ck.check("DELETE", "/v1/containers/{id}", &r);
    assert_eq!(r.status, 409, "{r:?}");
    let r = d.call(
        "POST",
        &c("/v1/containers/{id}/kill"),
        Some(r#"{"signal":"NOPE"}"#),
    );
    ck.check("POST", "/v1/containers/{id}/kill", &r);
    assert_eq!(r.status, 422, "{r:?}");
    let r = d.call(
        "POST",
        &c("/v1/containers/{id}/kill"),
        Some(r#"{"signal":"KILL"}"#),
    );
    ck.check("POST", "/v1/containers/{id}/kill", &r);
    assert_eq!(r.status, 202, "{r:?}");
    ck.wait_state(&d, &id, "stopped");
    let r = d.call("GET", &c("/v1/containers/{id}/stats"), None);
    ck.check("GET", "/v1/containers/{id}/stats", &r);
    assert_eq!(r.status, 409, "{r:?}");
    // What a stopped container refuses: 409.
    for (method, pattern, body) in [
        ("POST", "/v1/containers/{id}/start", None),
        ("POST", "/v1/containers/{id}/pause", None),
        ("POST", "/v1/containers/{id}/kill", None),
        (
            "POST",
            "/v1/containers/{id}/exec",
            Some(r#"{"args":["true"]}"#),
        ),
    ] {
        let r = d.call(method, &c(pattern), body);
        ck.expect(method, pattern, &r, 409);
    }

    // The events of the first container, from the start: every line fits, in order,
    // up to its stop.
    let mut ev = d.open("GET", &format!("/v1/events?since=1&id={id}"), &[], None);
    ck.check("GET", "/v1/events", &ev.head());
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
            check_json(doc, item_schema, &item, "GET /v1/events");
            seen.push(item["state"].clone());
        }
    }
    drop(ev);

    let r = d.call("DELETE", &c("/v1/containers/{id}"), None);
    ck.check("DELETE", "/v1/containers/{id}", &r);
    assert_eq!(r.status, 204, "{r:?}");
    let r = d.call(
        "DELETE",
        &concrete("/v1/containers/{id}?force=true", &id2),
        None,
    );
    ck.check("DELETE", "/v1/containers/{id}", &r);
    assert_eq!(r.status, 204, "{r:?}");

    // The document's own examples, on a fresh running container.
    let target = format!("oa-ex-{pid}");
    let tb = bundle(&scratch.0, &target, &["sleep", "1000"]);
    let r = d.call(
        "POST",
        "/v1/containers",
        Some(&json!({"id": target, "bundle": tb}).to_string()),
    );
    ck.expect("POST", "/v1/containers", &r, 202);
    ck.wait_state(&d, &target, "running");
    image_life(&ck, &d, &reg);
    network_life(&ck, &d);
    examples(&ck, &d, &scratch.0, &target, &reg.host());

    ck.assert_all_reached();
}

//! The OpenAPI 3.1 document served at `/openapi.json`, written as a
//! `serde_json` value: the API is small and stable, and a generator crate
//! (with its derive macros on every type) would cost more build time than
//! this file takes to keep true. `tests` checks it against the router's
//! route list ([`crate::api::ENDPOINTS`]) and resolves every `$ref`.

use serde_json::{json, Value};

fn image_body(description: &str) -> Value {
    let binary = json!({ "type": "string", "format": "binary" });
    json!({
        "required": true,
        "description": description,
        "content": {
            "image/jpeg": { "schema": binary },
            "image/png": { "schema": binary },
            "image/webp": { "schema": binary },
            "image/bmp": { "schema": binary },
            "application/octet-stream": { "schema": binary },
            "multipart/form-data": { "schema": {
                "type": "object",
                "required": ["photo"],
                "properties": { "photo": { "type": "string", "format": "binary", "description": "the photo (any file field name works)" } }
            } }
        }
    })
}

fn error(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

/// The 4xx/5xx every photo endpoint can answer.
fn upload_errors(mut responses: Value, write: bool) -> Value {
    let map = responses.as_object_mut().expect("object");
    map.insert("400".into(), error("not an image, truncated, empty, or a bad parameter"));
    map.insert("401".into(), error("missing or invalid API key"));
    if write {
        map.insert("403".into(), error("the API key has the read scope only"));
    }
    map.insert("413".into(), error("the body exceeds the size limit, or the photo the pixel limit (checked before decoding)"));
    map.insert("415".into(), error("not an image content type nor multipart/form-data"));
    // An endpoint's own 422 (verify: no face; enrol: a refusal) is kept; the face caps share it.
    map.entry("422").or_insert_with(|| error("more faces than the per-photo or per-request cap"));
    map.insert("500".into(), error("a server-side failure (gallery, models): the body gives a reference to the server log, no details"));
    map.insert("503".into(), unavailable());
    responses
}

fn unavailable() -> Value {
    json!({
        "description": "busy (inference queue full, too many requests in flight, or timed out) or shutting down: retry after `Retry-After` seconds",
        "headers": { "Retry-After": { "schema": { "type": "integer" }, "description": "seconds to wait" } },
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn name_parameter() -> Value {
    json!({ "name": "name", "in": "path", "required": true, "schema": { "type": "string" }, "description": "the identity's name (percent-encoded)" })
}

/// The whole document (`openapi: 3.1.0`), as `/openapi.json` serves it.
pub fn document() -> Value {
    let read_security = json!([{ "bearer": [] }, { "apiKey": [] }]);
    let boxed = json!({ "$ref": "#/components/schemas/Box" });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "visage",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Face detection, embeddings, quality, 1:1 verification and 1:N search over an enrolled gallery. \
    Reads need a key with the read scope (unless the server runs with --public-read), writes a key with the write scope; \
    create keys with `visage serve keys add --scope read|write`."
        },
        "security": read_security,
        "paths": {
            "/": { "get": {
                "operationId": "page", "summary": "The web page: upload a photo, see faces and matches, enrol.", "security": [],
                "responses": { "200": { "description": "HTML", "content": { "text/html": { "schema": { "type": "string" } } } } }
            } },
            "/openapi.json": { "get": {
                "operationId": "openapi", "summary": "This document.", "security": [],
                "responses": { "200": { "description": "OpenAPI 3.1", "content": { "application/json": { "schema": { "type": "object" } } } } }
            } },
            "/health": { "get": {
                "operationId": "health", "summary": "Readiness: 200 while serving (status ok, or degraded while a model worker is being replaced), 503 while draining at shutdown, when the gallery cannot be read or no model worker is left.", "security": [],
                "responses": { "200": ok("ready", "Health"), "503": ok("not ready", "Health") }
            } },
            "/health/live": { "get": {
                "operationId": "live", "summary": "Liveness: 200 whenever the process answers.", "security": [],
                "responses": { "200": { "description": "alive", "content": { "application/json": { "schema": { "type": "object" } } } } }
            } },
            "/metrics": { "get": {
                "operationId": "metrics", "summary": "Prometheus text: requests by route and status, in-flight requests, queue depth, inference latency histogram.", "security": [],
                "responses": { "200": { "description": "text exposition format 0.0.4", "content": { "text/plain": { "schema": { "type": "string" } } } } }
            } },
            "/v1/detect": { "post": {
                "operationId": "detect", "summary": "Every face: box, detector score, 5 landmarks, quality (feature magnitude).",
                "requestBody": image_body("the photo"),
                "responses": upload_errors(json!({ "200": ok("faces found (possibly none)", "DetectResponse") }), false)
            } },
            "/v1/embed": { "post": {
                "operationId": "embed", "summary": "Every face's unit embedding (cosine similarity = dot product) and quality.",
                "requestBody": image_body("the photo"),
                "responses": upload_errors(json!({ "200": ok("faces found (possibly none)", "EmbedResponse") }), false)
            } },
            "/v1/quality": { "post": {
                "operationId": "quality", "summary": "Faces ranked by quality (feature magnitude ‖x‖), best first.",
                "requestBody": image_body("the photo"),
                "responses": upload_errors(json!({ "200": ok("faces, best first", "QualityResponse") }), false)
            } },
            "/v1/verify": { "post": {
                "operationId": "verify", "summary": "Are the largest faces of two photos the same person?",
                "requestBody": { "required": true, "content": { "multipart/form-data": { "schema": {
                    "type": "object", "required": ["a", "b"],
                    "properties": { "a": { "type": "string", "format": "binary" }, "b": { "type": "string", "format": "binary" } }
                } } } },
                "responses": upload_errors(json!({
                    "200": ok("cosine similarity and decision", "VerifyResponse"),
                    "422": error("a photo has no face")
                }), false)
            } },
            "/v1/search": { "post": {
                "operationId": "search", "summary": "Every face of the photo searched in the gallery (same JSON as `visage gallery search --json`).",
                "parameters": [{ "name": "k", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "default": 5 }, "description": "matches per face (at most the server's --max-k)" }],
                "requestBody": image_body("the photo"),
                "responses": upload_errors(json!({ "200": ok("matches per face", "SearchResponse") }), false)
            } },
            "/v1/enrol": { "post": {
                "operationId": "enrol", "summary": "Enrol the largest face of a photo as NAME (created when new, else a template is added).",
                "security": [{ "bearer": [] }, { "apiKey": [] }],
                "parameters": [
                    { "name": "name", "in": "query", "required": false, "schema": { "type": "string" }, "description": "the person (or a form field `name`)" },
                    { "name": "Idempotency-Key", "in": "header", "required": false, "schema": { "type": "string", "minLength": 1, "maxLength": 128 },
                      "description": "makes a retry safe: the same key with the same request is answered with the first answer (header Idempotent-Replayed: true), with another request 422; remembered in memory (not across restarts)" }
                ],
                "requestBody": {
                    "required": true,
                    "content": {
                        "image/jpeg": { "schema": { "type": "string", "format": "binary" } },
                        "image/png": { "schema": { "type": "string", "format": "binary" } },
                        "image/webp": { "schema": { "type": "string", "format": "binary" } },
                        "image/bmp": { "schema": { "type": "string", "format": "binary" } },
                        "application/octet-stream": { "schema": { "type": "string", "format": "binary" } },
                        "multipart/form-data": { "schema": {
                            "type": "object", "required": ["name", "photo"],
                            "properties": {
                                "name": { "type": "string" },
                                "photo": { "type": "string", "format": "binary" },
                                "metadata": { "type": "string", "description": "JSON stored with the identity (replaces what it had)" }
                            }
                        } }
                    }
                },
                "responses": upload_errors(json!({
                    "200": ok("template added to an existing identity", "EnrolResponse"),
                    "201": ok("identity created", "EnrolResponse"),
                    "422": ok("no face, or the face refused by the gallery's quality policy (reasons given)", "Refusal")
                }), true)
            } },
            "/v1/identities": { "get": {
                "operationId": "listIdentities", "summary": "Every identity, by name, with the decision threshold.",
                "responses": { "200": ok("the gallery's identities", "IdentityList"), "401": error("missing or invalid API key"), "503": unavailable() }
            } },
            "/v1/identities/{name}": {
                "parameters": [name_parameter()],
                "get": {
                    "operationId": "getIdentity", "summary": "One identity (without its vectors).",
                    "responses": { "200": ok("the identity", "Identity"), "401": error("missing or invalid API key"), "404": error("no such identity"), "503": unavailable() }
                },
                "delete": {
                    "operationId": "deleteIdentity", "summary": "Delete an identity, its templates and its enrolment photo.",
                    "security": [{ "bearer": [] }, { "apiKey": [] }],
                    "responses": {
                        "200": { "description": "removed", "content": { "application/json": { "schema": {
                            "type": "object", "required": ["removed"], "properties": { "removed": { "$ref": "#/components/schemas/IdentitySummary" } }
                        } } } },
                        "401": error("missing or invalid API key"), "403": error("the API key has the read scope only"), "404": error("no such identity"), "503": unavailable()
                    }
                }
            },
            "/v1/identities/{name}/thumbnail": {
                "parameters": [name_parameter()],
                "get": {
                    "operationId": "identityThumbnail", "summary": "The identity's enrolment photo (its best face, cropped), as JPEG.",
                    "responses": {
                        "200": { "description": "JPEG", "content": { "image/jpeg": { "schema": { "type": "string", "format": "binary" } } } },
                        "401": error("missing or invalid API key"), "404": error("no photo for this identity"), "503": unavailable()
                    }
                }
            }
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "Authorization: Bearer vsk_…" },
                "apiKey": { "type": "apiKey", "in": "header", "name": "X-API-Key" }
            },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "string", "description": "what was wrong, naming the input" } } },
                "Box": { "type": "array", "items": { "type": "number" }, "minItems": 4, "maxItems": 4, "description": "[x1, y1, x2, y2] in photo pixels" },
                "Health": { "type": "object", "required": ["status"], "properties": {
                    "status": { "type": "string", "enum": ["ok", "degraded", "draining", "gallery unavailable", "no model workers"] },
                    "identities": { "type": ["integer", "null"] },
                    "gallery": { "type": "string", "enum": ["directory", "postgresql"], "description": "the kind of gallery (never its path or URL)" },
                    "recognizer": { "type": "string" },
                    "workers": { "type": "integer" }, "workers_configured": { "type": "integer" }, "worker_panics": { "type": "integer" },
                    "queue_depth": { "type": "integer" }, "queue_capacity": { "type": "integer" }, "in_flight": { "type": "integer" }
                } },
                "DetectResponse": { "type": "object", "required": ["width", "height", "faces"], "properties": {
                    "width": { "type": "integer" }, "height": { "type": "integer" },
                    "faces": { "type": "array", "items": { "type": "object", "required": ["box", "landmarks", "quality"], "properties": {
                        "box": boxed,
                        "score": { "type": ["number", "null"] },
                        "landmarks": { "type": "array", "items": { "type": "array", "items": { "type": "number" }, "minItems": 2, "maxItems": 2 }, "minItems": 5, "maxItems": 5,
                            "description": "eyes (left, right), nose, mouth corners (left, right)" },
                        "quality": { "type": "number", "description": "feature magnitude ‖x‖" }
                    } } }
                } },
                "EmbedResponse": { "type": "object", "required": ["recognizer", "faces"], "properties": {
                    "recognizer": { "type": "string" }, "width": { "type": "integer" }, "height": { "type": "integer" },
                    "faces": { "type": "array", "items": { "type": "object", "required": ["box", "quality", "embedding"], "properties": {
                        "box": boxed, "quality": { "type": "number" },
                        "embedding": { "type": "array", "items": { "type": "number" }, "description": "x/‖x‖" }
                    } } }
                } },
                "QualityResponse": { "type": "object", "required": ["faces"], "properties": {
                    "faces": { "type": "array", "items": { "type": "object", "required": ["face", "box", "quality"], "properties": {
                        "face": { "type": "integer", "description": "index in detector order" }, "box": boxed, "quality": { "type": "number" }
                    } } }
                } },
                "VerifyResponse": { "type": "object", "required": ["a", "b", "cosine"], "properties": {
                    "a": { "type": "object", "properties": { "box": boxed, "quality": { "type": "number" } } },
                    "b": { "type": "object", "properties": { "box": boxed, "quality": { "type": "number" } } },
                    "cosine": { "type": "number" },
                    "threshold": { "type": ["number", "null"], "description": "the recogniser's same_person_cosine" },
                    "same_person": { "type": ["boolean", "null"] }
                } },
                "Match": { "type": "object", "required": ["identity", "score"], "properties": {
                    "identity": { "type": "string" }, "score": { "type": "number", "description": "cosine similarity to the identity's pooled template" }
                } },
                "SearchResponse": { "type": "object", "required": ["faces"], "properties": {
                    "faces": { "type": "array", "items": { "type": "object", "required": ["box", "quality", "decision", "matches"], "properties": {
                        "box": boxed, "quality": { "type": "number" },
                        "decision": { "type": ["string", "null"], "description": "the top match when its score passes the gallery's threshold" },
                        "matches": { "type": "array", "items": { "$ref": "#/components/schemas/Match" } }
                    } } }
                } },
                "IdentitySummary": { "type": "object", "required": ["id", "name", "templates", "best_quality"], "properties": {
                    "id": { "type": "integer" }, "name": { "type": "string" }, "metadata": {},
                    "templates": { "type": "integer" }, "best_quality": { "type": "number" }
                } },
                "Identity": { "allOf": [{ "$ref": "#/components/schemas/IdentitySummary" }, { "type": "object", "properties": {
                    "thumbnail": { "type": ["string", "null"], "description": "URL of the enrolment photo" }
                } }] },
                "IdentityList": { "type": "object", "required": ["recognizer", "threshold", "identities"], "properties": {
                    "recognizer": { "type": "string" }, "threshold": { "type": "number" },
                    "identities": { "type": "array", "items": { "$ref": "#/components/schemas/Identity" } }
                } },
                "EnrolResponse": { "type": "object", "required": ["name", "created", "templates", "box", "quality"], "properties": {
                    "name": { "type": "string" }, "created": { "type": "boolean" }, "templates": { "type": "integer" },
                    "box": boxed, "quality": { "type": "number" },
                    "identity": { "$ref": "#/components/schemas/IdentitySummary" }
                } },
                "Refusal": { "type": "object", "required": ["error", "refused"], "properties": {
                    "error": { "type": "string" },
                    "refused": { "type": "array", "items": { "type": "object", "required": ["source", "reason"], "properties": {
                        "source": { "type": "string" }, "reason": { "type": "string", "enum": ["no_face", "unreadable", "too_small", "low_quality", "bad_embedding"] }
                    } } }
                } }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ENDPOINTS;

    /// Every `$ref` in `value`, as JSON pointers.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    if key == "$ref" {
                        out.push(v.as_str().expect("a $ref is a string").to_string());
                    } else {
                        refs(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn document_describes_every_route_and_resolves() {
        // Through text and back, as a client reads it.
        let doc: Value = serde_json::from_str(&document().to_string()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        let paths = doc["paths"].as_object().unwrap();
        let methods = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];
        let mut documented = Vec::new();
        let mut operation_ids = std::collections::HashSet::new();
        for (path, item) in paths {
            assert!(path.starts_with('/'), "{path}");
            for (key, operation) in item.as_object().unwrap() {
                if key == "parameters" {
                    continue;
                }
                assert!(methods.contains(&key.as_str()), "{path}: `{key}` is not an HTTP method");
                documented.push((key.to_uppercase(), path.clone()));
                let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{key} {path}: no operationId"));
                assert!(operation_ids.insert(id.to_string()), "operationId {id} twice");
                let responses = operation["responses"].as_object().unwrap_or_else(|| panic!("{key} {path}: no responses"));
                assert!(!responses.is_empty());
                for (status, response) in responses {
                    assert!(status.len() == 3 && status.parse::<u16>().is_ok(), "{key} {path}: status {status}");
                    assert!(response["description"].is_string(), "{key} {path} {status}: responses need a description");
                }
                // Path templates and path parameters agree (OpenAPI: each {x} must be declared).
                let declared: Vec<&str> = item["parameters"]
                    .as_array()
                    .into_iter()
                    .chain(operation["parameters"].as_array())
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                let templated: Vec<&str> = path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
                assert_eq!(declared, templated, "{key} {path}");
            }
        }
        let mut expected: Vec<(String, String)> = ENDPOINTS.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        expected.sort();
        documented.sort();
        assert_eq!(documented, expected, "the document and the router's routes differ");

        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.len() > 20);
        for pointer in all {
            let target = pointer.strip_prefix('#').unwrap_or_else(|| panic!("{pointer}: only local refs"));
            assert!(doc.pointer(target).is_some(), "{pointer} does not resolve");
        }
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        for requirement in doc["security"].as_array().unwrap() {
            for name in requirement.as_object().unwrap().keys() {
                assert!(schemes.contains_key(name), "security scheme {name} undefined");
            }
        }
    }
}

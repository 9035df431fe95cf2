//! Native tests of the HTTP form against the SDK's scripted web server.
use autoflow_plugin_sdk::testing::{FakeHttp, TestHost};
use autoflow_plugin_sdk::{Error, Record, parse_config};
use serde_json::{Value, json};

use super::*;

fn records(values: &[Value]) -> Vec<Record> {
    values.iter().map(|v| Record::new(v.to_string())).collect()
}

fn values(out: &[Record]) -> Vec<Value> {
    out.iter()
        .map(|r| serde_json::from_slice(&r.value).unwrap())
        .collect()
}

fn host(fake: FakeHttp) -> TestHost {
    TestHost::new().with_http(fake)
}

fn urls(host: &TestHost) -> Vec<String> {
    let calls = &host.http.as_ref().unwrap().calls;
    calls.iter().map(|c| c.url.clone()).collect()
}

#[test]
fn batch_mode_sends_the_keys_of_a_batch_in_one_request_and_caches_the_answers() {
    let answer = json!([
        {"id": "a b", "name": "Ada", "tier": 1},
        {"id": "c/d", "name": "Bob", "tier": 2},
        {"id": "zz", "name": "not asked for"},
        {"id": "a b", "name": "a second item of a key: ignored"},
    ]);
    let fake = FakeHttp::new().route(
        "GET",
        "http://api/customers?ids=a%20b;c%2Fd;7",
        200,
        answer.to_string(),
    );
    let mut host = host(fake);
    let mut t: Lookup = host
        .open(r#"{"http":{"url":"http://api/customers?ids={keys}","separator":";"},"key":"id"}"#)
        .unwrap();
    let out = host
        .batch(
            &mut t,
            records(&[
                json!({"n": 1, "id": "a b"}),
                json!({"n": 2, "id": "c/d"}),
                json!({"n": 3, "id": "a b"}),
                json!({"n": 4, "id": 7}),
                json!({"n": 5}),
            ]),
        )
        .unwrap();
    assert_eq!(
        values(&out.records),
        [
            json!({"n": 1, "id": "a b", "name": "Ada", "tier": 1}),
            json!({"n": 2, "id": "c/d", "name": "Bob", "tier": 2}),
            json!({"n": 3, "id": "a b", "name": "Ada", "tier": 1}),
            json!({"n": 4, "id": 7}),
            json!({"n": 5}),
        ]
    );
    let calls = &host.http.as_ref().unwrap().calls;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "GET");
    assert!(
        calls[0]
            .headers
            .contains(&("accept".into(), "application/json".into()))
    );
    // The same keys again (7 with no item among them) cost no request.
    let out = host
        .batch(&mut t, records(&[json!({"id": "c/d"}), json!({"id": 7})]))
        .unwrap();
    assert_eq!(out.records.len(), 2);
    assert_eq!(urls(&host).len(), 1);
    assert_eq!(host.counters.get("lookup_queries"), Some(&1));
    assert_eq!(
        host.counters.get("lookup_misses"),
        Some(&3),
        "7 twice, no key once"
    );
}

#[test]
fn batch_mode_chunks_at_batch_size() {
    let item = |id: i64| json!({"code": id, "v": id * 10});
    let fake = FakeHttp::new()
        .route(
            "GET",
            "http://api/x/1,2",
            200,
            json!([item(1), item(2)]).to_string(),
        )
        .route("GET", "http://api/x/3", 200, json!([item(3)]).to_string());
    let mut host = host(fake);
    let out = host
        .transform::<Lookup>(
            r#"{"http":{"url":"http://api/x/{keys}","batch_size":2,"match":"code"},"key":"k","into":"x"}"#,
            records(&[json!({"k": 1}), json!({"k": 2}), json!({"k": 3})]),
        )
        .unwrap();
    assert_eq!(
        values(&out.records),
        [
            json!({"k": 1, "x": {"v": 10}}),
            json!({"k": 2, "x": {"v": 20}}),
            json!({"k": 3, "x": {"v": 30}}),
        ]
    );
    assert_eq!(urls(&host), ["http://api/x/1,2", "http://api/x/3"]);
    assert_eq!(host.counters.get("lookup_queries"), Some(&2));
}

#[test]
fn post_mode_sends_the_keys_in_the_body_with_secret_headers() {
    let answer = json!({"data": [{"sku": "a-1", "title": "Lamp", "price": 3}]});
    let fake = FakeHttp::new().route("POST", "http://api/products", 200, answer.to_string());
    let mut host = host(fake).secret("api_token", "s3cr3t");
    let out = host
        .transform::<Lookup>(
            r#"{"http":{"url":"http://api/products","method":"POST","body_key":"skus","items":"/data",
                "headers":{"authorization":{"secret":"api_token","prefix":"Bearer "}}},
               "key":"sku","columns":["title","colour"],"into":"product","missing":"reject"}"#,
            records(&[json!({"sku": "a-1"}), json!({"sku": "b-2"}), json!({"sku": 5})]),
        )
        .unwrap();
    assert_eq!(
        values(&out.records),
        [json!({"sku": "a-1", "product": {"title": "Lamp", "colour": null}})]
    );
    assert_eq!(
        out.rejected,
        [
            (
                1,
                "no item with sku = b-2 from http://api/products".to_string()
            ),
            (
                2,
                "no item with sku = 5 from http://api/products".to_string()
            ),
        ]
    );
    let call = &host.http.as_ref().unwrap().calls[0];
    assert_eq!(call.method, "POST");
    let body: Value = serde_json::from_slice(call.body.as_deref().unwrap()).unwrap();
    assert_eq!(body, json!({"skus": ["a-1", "b-2", 5]}));
    for h in [
        ("authorization", "Bearer s3cr3t"),
        ("content-type", "application/json"),
    ] {
        assert!(call.headers.contains(&(h.0.into(), h.1.into())), "{h:?}");
    }
}

#[test]
fn per_key_mode_sends_one_request_per_new_key_and_a_404_is_no_item() {
    let fake = FakeHttp::new()
        .route(
            "GET",
            "http://api/users/1",
            200,
            r#"{"user": {"id": 1, "name": "Ada"}}"#,
        )
        .route("GET", "http://api/users/3", 200, r#"{"user": null}"#);
    let mut host = host(fake);
    let mut t: Lookup = host
        .open(r#"{"http":{"url":"http://api/users/{key}","items":"/user"},"key":"id","missing":"drop"}"#)
        .unwrap();
    let batch = records(&[
        json!({"id": 1}),
        json!({"id": 2}),
        json!({"id": 1}),
        json!({"id": 3}),
    ]);
    let out = host.batch(&mut t, batch).unwrap();
    assert_eq!(
        values(&out.records),
        [
            json!({"id": 1, "name": "Ada"}),
            json!({"id": 1, "name": "Ada"})
        ]
    );
    assert!(out.rejected.is_empty());
    let expected = [
        "http://api/users/1",
        "http://api/users/2",
        "http://api/users/3",
    ];
    assert_eq!(urls(&host), expected);
    let out = host
        .batch(&mut t, records(&[json!({"id": 2}), json!({"id": 1})]))
        .unwrap();
    assert_eq!(out.records.len(), 1);
    assert_eq!(urls(&host), expected, "cached: no new request");
    assert_eq!(host.counters.get("lookup_queries"), Some(&3));
}

#[test]
fn missing_keep_with_into_and_merge() {
    for (config, expected) in [
        (
            r#"{"http":{"url":"http://api/u/{key}"},"key":"id","into":"u"}"#,
            json!({"id": 9, "u": null}),
        ),
        (
            r#"{"http":{"url":"http://api/u/{key}"},"key":"id"}"#,
            json!({"id": 9}),
        ),
    ] {
        let mut host = host(FakeHttp::new());
        let out = host
            .transform::<Lookup>(config, records(&[json!({"id": 9})]))
            .unwrap();
        assert_eq!(values(&out.records), [expected], "{config}");
    }
}

#[test]
fn answers_that_are_not_what_is_expected_fail_naming_the_url_and_status() {
    let fake = FakeHttp::new()
        .route("GET", "http://api/bad?k=1", 200, "<html>oops</html>")
        .route("GET", "http://api/obj?k=1", 200, r#"{"id": 1}"#)
        .route("GET", "http://api/nokey?k=1", 200, r#"[{"name": "x"}]"#)
        .route("GET", "http://api/down?k=1", 503, "")
        .route("GET", "http://api/denied?k=1", 403, "no such token");
    let cases = [
        ("bad", Error::Fatal("GET http://api/bad?k=1: the body is not JSON: expected value at line 1 column 1 (<html>oops</html>)".into())),
        ("obj", Error::Fatal("GET http://api/obj?k=1: the body is not an array".into())),
        ("nokey", Error::Fatal(r#"GET http://api/nokey?k=1: item 0 has no key in field "id""#.into())),
        ("down", Error::Retryable("GET http://api/down?k=1: status 503".into())),
        ("denied", Error::Fatal("GET http://api/denied?k=1: status 403 (no such token)".into())),
        ("gone", Error::Fatal("GET http://api/gone?k=1: status 404".into())),
    ];
    for (path, expected) in cases {
        let mut host = host(fake.clone()).secret("t", "s3cr3t");
        let config = format!(
            r#"{{"http":{{"url":"http://api/{path}?k={{keys}}","headers":{{"x-token":{{"secret":"t"}}}}}},"key":"id"}}"#
        );
        let e = host
            .transform::<Lookup>(&config, records(&[json!({"id": 1})]))
            .unwrap_err();
        assert_eq!(e, expected, "{path}");
    }
}

#[test]
fn bad_configs_are_named() {
    let cases = [
        (
            r#"{"connection":"db","table":"t","http":{"url":"http://h/{key}"},"key":"k"}"#,
            "connection is for a SQL lookup, http for an HTTP one: give one of them (with http, the items' field matched is http.match)",
        ),
        (
            r#"{"column":"id","http":{"url":"http://h/{key}"},"key":"k"}"#,
            "column is for a SQL lookup, http for an HTTP one: give one of them (with http, the items' field matched is http.match)",
        ),
        (
            r#"{"key":"k"}"#,
            "give connection and table (a SQL table) or http (an HTTP API) to look in",
        ),
        (
            r#"{"connection":"db","key":"k"}"#,
            "table is required with connection",
        ),
        (
            r#"{"table":"t","key":"k"}"#,
            "connection is required with table",
        ),
        (
            r#"{"http":{"url":"http://h/{id}"},"key":"k"}"#,
            r#"http.url "http://h/{id}": unknown placeholder {id} (use {key} or {keys})"#,
        ),
        (
            r#"{"http":{"url":"http://h/{key"},"key":"k"}"#,
            r#"http.url "http://h/{key": a { without }"#,
        ),
        (
            r#"{"http":{"url":"http://h/key}"},"key":"k"}"#,
            r#"http.url "http://h/key}": a } without {"#,
        ),
        (
            r#"{"http":{"url":"http://h/{key}?all={keys}"},"key":"k"}"#,
            r#"http.url "http://h/{key}?all={keys}" has both {key} and {keys}: one request per key, or one per batch?"#,
        ),
        (
            r#"{"http":{"url":"http://h/all"},"key":"k"}"#,
            r#"http.url "http://h/all" has no {key} or {keys} (or use method POST to send the keys in the body)"#,
        ),
        (
            r#"{"http":{"url":"http://h/{key}","method":"POST"},"key":"k"}"#,
            r#"http.url "http://h/{key}": with method POST the keys go in the body, not in {key} or {keys}"#,
        ),
        (
            r#"{"http":{"url":"ftp://h/{key}"},"key":"k"}"#,
            r#"http.url "ftp://h/{key}" is not an http:// or https:// URL"#,
        ),
        (
            r#"{"http":{"url":"http://h/{keys}","batch_size":0},"key":"k"}"#,
            "http.batch_size must be at least 1",
        ),
        (
            r#"{"http":{"url":"http://h/{keys}","items":"data"},"key":"k"}"#,
            r#"http.items "data" is not a JSON pointer (it starts with /)"#,
        ),
        (
            r#"{"http":{"url":"http://h/{keys}","headers":{"a":{"secret":"nope"}}},"key":"k"}"#,
            r#"http.headers.a: the secret "nope" is not granted to this step"#,
        ),
    ];
    for (config, why) in cases {
        let e = TestHost::new().open::<Lookup>(config).unwrap_err();
        assert_eq!(e, Error::InvalidConfig(why.into()), "{config}");
    }
    assert!(
        parse_config::<Config>(r#"{"http":{"url":"http://h/{key}","verb":"GET"},"key":"k"}"#)
            .is_err()
    );
    assert!(
        parse_config::<Config>(r#"{"http":{"url":"http://h/{key}","method":"PUT"},"key":"k"}"#)
            .is_err()
    );
    let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    assert_eq!(schema["oneOf"][1]["required"], json!(["http"]));
    assert_eq!(schema["properties"]["http"]["required"], json!(["url"]));
}

#[test]
fn the_schema_accepts_the_configs_the_code_does_and_refuses_both_forms_or_neither() {
    let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    for good in [
        r#"{"connection":"db","table":"t","key":"k","column":"c","columns":["a"],"into":"x","missing":"reject"}"#,
        r#"{"http":{"url":"http://h/{key}"},"key":"k"}"#,
        r#"{"http":{"url":"https://h/p","method":"POST","body_key":"skus","items":"/data","batch_size":50,
            "headers":{"a":"b","authorization":{"secret":"t","prefix":"Bearer "}}},"key":"k","columns":["a"]}"#,
        r#"{"http":{"url":"http://h/?ids={keys}","match":"id","separator":";"},"key":"k","cache_size":10}"#,
    ] {
        let config: Value = serde_json::from_str(good).unwrap();
        assert!(v.is_valid(&config), "{good}");
        TestHost::new()
            .secret("t", "x")
            .open::<Lookup>(good)
            .unwrap();
    }
    for bad in [
        r#"{"connection":"db","table":"t","http":{"url":"http://h/{key}"},"key":"k"}"#,
        r#"{"schema":"s","http":{"url":"http://h/{key}"},"key":"k"}"#,
        r#"{"key":"k"}"#,
        r#"{"connection":"db","key":"k"}"#,
        r#"{"http":{"url":"ftp://h/{key}"},"key":"k"}"#,
        r#"{"http":{"url":"http://h/{keys}","batch_size":0},"key":"k"}"#,
        r#"{"http":{"url":"http://h/{keys}","verb":"GET"},"key":"k"}"#,
    ] {
        let config: Value = serde_json::from_str(bad).unwrap();
        assert!(!v.is_valid(&config), "{bad}");
        assert!(TestHost::new().open::<Lookup>(bad).is_err(), "{bad}");
    }
}

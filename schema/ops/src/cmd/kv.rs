//! `kv APP list|get KEY|set KEY VALUE|del KEY [--bucket B]`: an app's
//! `wasi:keyvalue` buckets, for operators (viewers may list and get).

use schema::KvOutcome;
use schema::command::{KvArgs, KvOp};

use crate::error::OpError;

pub fn text(o: &KvOutcome) -> String {
    match o.op.as_str() {
        "list" => {
            let keys = o.keys.as_deref().unwrap_or_default();
            let mut s: String = keys
                .iter()
                .map(|k| format!("{}\n", schema::render::clean(k)))
                .collect();
            if o.more {
                s.push_str("… more keys follow (the first page is shown)\n");
            }
            s
        }
        "get" => match (&o.value, &o.value_hex) {
            (Some(v), _) => format!("{}\n", schema::render::clean(v)),
            (None, Some(h)) => format!("(not UTF-8, hex) {h}\n"),
            (None, None) => String::new(),
        },
        _ => format!("{}\n", summary(o)),
    }
}

/// The console's one line.
pub fn summary(o: &KvOutcome) -> String {
    let key = o
        .key
        .as_deref()
        .map(schema::render::clean)
        .unwrap_or_default();
    match o.op.as_str() {
        "set" => format!("set {key} in {}/{}", o.app, o.bucket),
        "del" => format!("deleted {key} from {}/{}", o.app, o.bucket),
        "get" => format!(
            "{key} = {}",
            o.value
                .as_deref()
                .map(schema::render::clean)
                .unwrap_or_default()
        ),
        _ => format!(
            "{} keys in {}/{}",
            o.keys.as_ref().map_or(0, Vec::len),
            o.app,
            o.bucket
        ),
    }
}

/// The answer to `args` from what the store said. `found` is the value of
/// a `get` (None: no such key, an error).
pub fn outcome(
    args: &KvArgs,
    keys: Option<(Vec<String>, bool)>,
    found: Option<Vec<u8>>,
) -> Result<KvOutcome, OpError> {
    let mut o = KvOutcome {
        app: args.app.clone(),
        bucket: args.bucket().to_string(),
        op: String::new(),
        key: None,
        keys: None,
        value: None,
        value_hex: None,
        more: false,
    };
    match &args.op {
        KvOp::List => {
            o.op = "list".into();
            let (k, more) = keys.unwrap_or_default();
            o.keys = Some(k);
            o.more = more;
        }
        KvOp::Get(k) => {
            o.op = "get".into();
            o.key = Some(k.clone());
            let Some(v) = found else {
                return Err(OpError::failed(format!(
                    "no key {:?} in bucket {} of {}",
                    schema::render::clean(k),
                    o.bucket,
                    o.app
                )));
            };
            match String::from_utf8(v) {
                Ok(s) => o.value = Some(s),
                Err(e) => o.value_hex = Some(hex(e.as_bytes())),
            }
        }
        KvOp::Set(k, _) => {
            o.op = "set".into();
            o.key = Some(k.clone());
        }
        KvOp::Del(k) => {
            o.op = "del".into();
            o.key = Some(k.clone());
        }
    }
    Ok(o)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

//! A real S3-compatible server (moto) on 127.0.0.1 for the report upload tests, and an S3 client of it.

use std::process::Command;

use serde_json::Value;

/// A real S3-compatible server (moto) on 127.0.0.1, stopped when dropped.
pub struct S3Server {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    /// One plain HTTP request to the server; its status line. A server
    /// that has just started may accept a connection and reset it while it
    /// is still loading: a reset or refused connection is tried again, for
    /// 20 s at most.
    pub fn request(&self, head: &str, body: &str) -> String {
        let mut last = None;
        for _ in 0..100 {
            match self.try_request(head, body) {
                Ok(status) => return status,
                Err(e) => last = Some(e),
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("{head} to moto: {last:?}");
    }

    fn try_request(&self, head: &str, body: &str) -> std::io::Result<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.endpoint.trim_start_matches("http://"))?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))?;
        write!(
            s,
            "{head} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut reply = String::new();
        s.read_to_string(&mut reply)?;
        Ok(reply.lines().next().unwrap_or_default().to_string())
    }

    /// Create a bucket: a plain S3 `PUT /name`.
    pub fn create_bucket(&self, name: &str) {
        let status = self.request(&format!("PUT /{name}"), "");
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    }
}

/// Start moto's S3 server, or `None` where it is not installed (CI installs
/// it, and there its absence fails the test).
pub fn s3_server() -> Option<S3Server> {
    if !super::python::has("moto.server, flask", "'moto[server]'") {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start moto");
    let server = S3Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    // Bounded wait for the port: 20 s at most.
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(server);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("moto did not listen on {port} within 20 s");
}

/// An S3 client of the `reports` bucket on a moto server.
pub fn s3_store(server: &S3Server, key: &str, secret: &str) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&server.endpoint)
        .with_allow_http(true)
        .with_bucket_name("reports")
        .with_region("us-east-1")
        .with_access_key_id(key)
        .with_secret_access_key(secret)
        .build()
        .unwrap()
}

/// An object's bytes, `None` when it is not there.
pub fn s3_get(store: &object_store::aws::AmazonS3, name: &str) -> Option<Vec<u8>> {
    use object_store::ObjectStoreExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = object_store::path::Path::from(name);
    match rt.block_on(async { store.get(&path).await?.bytes().await }) {
        Ok(bytes) => Some(bytes.to_vec()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("{name}: {e}"),
    }
}

pub fn s3_put(store: &object_store::aws::AmazonS3, name: &str, bytes: Vec<u8>) {
    use object_store::ObjectStoreExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = object_store::path::Path::from(name);
    rt.block_on(store.put(&path, bytes.into())).unwrap();
}

/// Create an IAM user on moto whose policy is `policy`; its access key and secret.
pub fn moto_user(server: &S3Server, policy: &Value) -> (String, String) {
    const SCRIPT: &str = r#"
import sys, boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
iam.create_user(UserName="reporter")
iam.put_user_policy(UserName="reporter", PolicyName="reports", PolicyDocument=sys.argv[2])
key = iam.create_access_key(UserName="reporter")["AccessKey"]
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;
    let o = Command::new("python3")
        .args(["-c", SCRIPT, &server.endpoint, &policy.to_string()])
        .output()
        .expect("run python3");
    assert!(o.status.success(), "{}", super::out::stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let (key, secret) = out.trim().split_once(' ').unwrap();
    (key.to_string(), secret.to_string())
}

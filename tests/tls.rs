//! HTTPS and WSS on Lookout's listener, with certificates the test makes (rcgen): curl checks
//! the chain, a plain-HTTP client is told to use HTTPS, Chromium plays the page over https and
//! wss, and a SIGHUP with a new certificate keeps it playing while new connections get the new
//! certificate. Lookout runs as the binary, so that the signal is the real one.

use lookout_testkit::browser::PausedPage;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PublicKeyData};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const LOOKOUT: &str = env!("CARGO_BIN_EXE_lookout");

/// A certificate authority of the test's own, and leaf certificates for 127.0.0.1 it signs.
struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl TestCa {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "Lookout test CA");
        let key = KeyPair::generate().expect("CA key");
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        Self { params, key, pem }
    }

    /// Writes a leaf certificate named `name` and its key to `dir`; returns the base64 SHA-256
    /// of its public key, which Chromium is told to trust.
    fn issue(&self, name: &str, dir: &Path) -> String {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("leaf key");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("leaf certificate");
        // Written whole, then renamed: a reload never reads half a file.
        for (file, text) in [("cert.pem", format!("{}{}", cert.pem(), self.pem)), ("key.pem", key.serialize_pem())] {
            let partial = dir.join(format!("{file}.new"));
            std::fs::write(&partial, text).expect("write PEM");
            std::fs::rename(&partial, dir.join(file)).expect("rename PEM");
        }
        use base64::Engine;
        let spki = ring::digest::digest(&ring::digest::SHA256, &key.subject_public_key_info());
        base64::engine::general_purpose::STANDARD.encode(spki.as_ref())
    }
}

struct Lookout {
    child: Child,
    port: u16,
    stderr: std::thread::JoinHandle<String>,
}

impl Lookout {
    fn start(config: &Path) -> Self {
        let mut child = Command::new(LOOKOUT).arg("--config").arg(config).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start lookout");
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the page's URL");
        let port = line
            .split("https://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("an https URL in {line:?}"));
        Self { child, port, stderr }
    }

    fn hang_up(&self) {
        let status = Command::new("kill").args(["-HUP", &self.child.id().to_string()]).status().expect("kill -HUP");
        assert!(status.success());
    }

    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.join().unwrap_or_default()
    }
}

/// curl, checking the chain against the test's CA: the subject line of the certificate it saw
/// and the body.
fn curl(port: u16, ca: &Path, path: &str) -> (String, String) {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--verbose", "--max-time", "5", "--cacert"])
        .arg(ca)
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .expect("run curl");
    let verbose = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "curl verified the chain and got an answer: {verbose}");
    let subject = verbose.lines().find(|l| l.contains("subject:")).unwrap_or_default().to_owned();
    (subject, String::from_utf8_lossy(&output.stdout).into_owned())
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lookout-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_serve_chromium_and_a_new_certificate_takes_over_on_sighup() {
    let dir = temp_dir();
    let ca = TestCa::new();
    let first_key = ca.issue("lookout-first", &dir);
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).expect("write CA");
    let config = dir.join("lookout.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n[webrtc]\nudp_port = 0\n\
         [paths.demo]\nsource = \"testpattern\"\ntest_pattern = { width = 320, height = 180, fps = 15, bitrate_kbps = 300 }\n",
    )
    .expect("write config");
    let lookout = Lookout::start(&config);

    let (subject, body) = curl(lookout.port, &ca_file, "/api/paths");
    assert!(subject.contains("lookout-first") && body.contains("\"demo\""), "{subject}\n{body}");

    // Plain HTTP on the TLS port: a clear answer at once, not a hang.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", lookout.port)).expect("connect");
    plain.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let mut answer = String::new();
    let _ = plain.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("use https://"), "{answer:?}");

    // Chromium plays the page over https, its signalling over wss.
    let url = format!("https://127.0.0.1:{}/?path=demo", lookout.port);
    let page = PausedPage::open_with_env(&url, &[("CHROMIUM_TRUST_SPKI", &first_key)]).await;

    // A renewed certificate: new connections get it after SIGHUP, the playing page plays on.
    ca.issue("lookout-renewed", &dir);
    lookout.hang_up();
    let mut renewed = String::new();
    for _ in 0..50 {
        renewed = curl(lookout.port, &ca_file, "/api/paths").0;
        if renewed.contains("lookout-renewed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(renewed.contains("lookout-renewed"), "after SIGHUP: {renewed}");
    let result = page.assert_resumes("the certificate was renewed").await;
    assert_eq!(result["sessionsStarted"].as_u64(), Some(1), "the same session played on: {result}");

    // A broken certificate file on SIGHUP keeps the one in use, and says why.
    std::fs::write(dir.join("cert.pem"), "not a certificate").expect("write");
    lookout.hang_up();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(curl(lookout.port, &ca_file, "/api/paths").0.contains("lookout-renewed"));
    let log = lookout.stop();
    assert!(log.contains("the certificate in use stays"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

//! `herald health`: ask a running Herald's `/up` whether it serves, and say so with the exit status
//! (0 for `200`, 1 for anything else, with the reason). Container images and hosts without curl use
//! the binary itself as their health check.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// The URL that reaches a server listening on `host:port`: a wildcard address is asked on loopback.
pub(crate) fn local_url(host: IpAddr, port: u16, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    match host {
        IpAddr::V4(ip) if ip.is_unspecified() => format!("{scheme}://127.0.0.1:{port}/up"),
        IpAddr::V6(ip) if ip.is_unspecified() => format!("{scheme}://[::1]:{port}/up"),
        IpAddr::V4(ip) => format!("{scheme}://{ip}:{port}/up"),
        IpAddr::V6(ip) => format!("{scheme}://[{ip}]:{port}/up"),
    }
}

/// Ask `url` within `timeout`; `Ok` only if it answers `200`.
pub(crate) fn check(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let uri: Uri = url.parse().with_context(|| format!("{url:?} is not a URL"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => bail!("{url:?}: only http:// and https:// URLs can be asked"),
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")?;
    let asked = runtime.block_on(async { tokio::time::timeout(timeout, ask(&uri, tls)).await });
    let (status, body) = match asked {
        Ok(answer) => answer.with_context(|| format!("{url} did not answer"))?,
        Err(_) => bail!("{url} did not answer within {} s", timeout.as_secs_f32()),
    };
    if status != StatusCode::OK {
        let body = String::from_utf8_lossy(&body);
        let body: String = body.trim().chars().take(200).collect();
        bail!("{url} answered {status}{}{body}", if body.is_empty() { "" } else { ": " });
    }
    println!("{url} answered {status}");
    Ok(())
}

async fn ask(uri: &Uri, tls: bool) -> anyhow::Result<(StatusCode, Bytes)> {
    let host = uri.host().ok_or_else(|| anyhow!("the URL names no host"))?;
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    // Uri keeps the brackets of an IPv6 address; the socket address and the TLS name do not want them.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = TcpStream::connect((host, port)).await.map_err(|error| match error.kind() {
        std::io::ErrorKind::ConnectionRefused => anyhow!("nothing is listening on {host} port {port}"),
        _ => anyhow!("cannot connect to {host} port {port}: {error}"),
    })?;
    if !tls {
        // A TLS listener answers plain HTTP with a TLS alert, which hyper reports as a malformed
        // answer: say what probably happened rather than only that.
        return get(tcp, uri).await.map_err(|error| {
            let garbled =
                error.chain().any(|cause| cause.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_parse));
            if garbled {
                let path = uri.path_and_query().map_or("/", |path| path.as_str());
                let authority = uri.authority().map_or(host, |authority| authority.as_str());
                error.context(format!("the answer is not HTTP; if this port serves TLS, ask https://{authority}{path}"))
            } else {
                error
            }
        });
    }
    let name = match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_owned()).context("not a host name for TLS")?,
    };
    let stream = connector()?.connect(name, tcp).await.context("TLS handshake failed")?;
    get(stream, uri).await
}

/// `GET` the URL's path over `stream`, HTTP/1.1, and read the answer.
async fn get<S>(stream: S, uri: &Uri) -> anyhow::Result<(StatusCode, Bytes)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.context("HTTP handshake failed")?;
    tokio::spawn(connection);
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    let authority = uri.authority().map_or("localhost", |authority| authority.as_str());
    let request = hyper::Request::get(path).header(hyper::header::HOST, authority).body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await.context("no HTTP answer")?;
    let status = response.status();
    let body = response.into_body().collect().await.context("the answer broke off")?.to_bytes();
    Ok((status, body))
}

/// A TLS client that takes any certificate. This asks whether a server of ours answers, usually on
/// loopback where the certificate's names do not match, and sends nothing secret; clients elsewhere
/// still check the certificate as usual. The handshake signatures are verified all the same.
fn connector() -> anyhow::Result<TlsConnector> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS setup failed")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls12_signature(message, cert, signature, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls13_signature(message, cert, signature, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_address_is_asked_on_loopback() {
        assert_eq!(local_url("0.0.0.0".parse().unwrap(), 6001, false), "http://127.0.0.1:6001/up");
        assert_eq!(local_url("::".parse().unwrap(), 6001, true), "https://[::1]:6001/up");
        assert_eq!(local_url("10.0.0.5".parse().unwrap(), 80, false), "http://10.0.0.5:80/up");
        assert_eq!(local_url("fe80::1".parse().unwrap(), 443, true), "https://[fe80::1]:443/up");
    }
}

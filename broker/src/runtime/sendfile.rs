//! The one place that calls sendfile(2): record data goes from a segment file's page cache to a
//! plaintext client socket without a copy into user space (`nix::sys::sendfile`, safe code).
//!
//! The socket is non-blocking (tokio's): sendfile sends what fits in the socket buffer and returns
//! that count (a partial send) or EAGAIN; then the task waits for writability through tokio and goes
//! on from where it stopped. sendfile reads at an explicit offset, so the file's own position is not
//! used and the same `File` may serve many sends at once.
//!
//! The file may have been deleted meanwhile (retention, compaction, a deleted topic): the open file
//! stays readable, as in Kafka. It may also have been truncated (a replica truncating its log, a
//! segment rewritten by recovery): then sendfile comes back with 0 before the region is sent. The
//! response's frame length is already on the wire, so the region cannot be shortened: the send fails
//! with `Truncated`, and the connection closes (Kafka's `FileRecords.writeTo` fails the same way), so
//! the client never sees a malformed frame; it reconnects and fetches again.

use std::io;

use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::api::FileRegion;

/// Largest count asked of one sendfile call (Linux sends at most 0x7ffff000 bytes per call anyway).
const MAX_CHUNK: usize = 1 << 30;

/// Sends `region` to `socket`, waiting for writability whenever the socket buffer is full. An error
/// leaves the connection in an unknown state: the caller closes it. A file shorter than the region
/// is an error of kind `UnexpectedEof` (see the module text).
pub async fn send_region(socket: &TcpStream, region: &FileRegion) -> io::Result<()> {
    let end = region.position + region.len as u64;
    let mut offset = i64::try_from(region.position).map_err(|_| io::Error::other("region offset beyond i64"))?;
    while (offset as u64) < end {
        let count = ((end - offset as u64) as usize).min(MAX_CHUNK);
        let sent = loop {
            socket.writable().await?;
            match socket.try_io(Interest::WRITABLE, || {
                nix::sys::sendfile::sendfile64(socket, region.file.as_ref(), Some(&mut offset), count)
                    .map_err(io::Error::from)
            }) {
                Ok(sent) => break sent,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if sent == 0 {
            return Err(truncated(region, offset as u64));
        }
    }
    Ok(())
}

fn truncated(region: &FileRegion, at: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "segment file truncated under a fetch response: it ends at byte {at}, the response needs bytes {}..{}",
            region.position,
            region.position + region.len as u64
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::Write;
    use std::sync::Arc;

    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;

    async fn socket_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    fn file_with(bytes: &[u8]) -> Arc<File> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        Arc::new(file)
    }

    #[tokio::test]
    async fn sends_a_region_larger_than_the_socket_buffer_while_the_peer_reads_slowly() {
        let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let file = file_with(&data);
        let (server, mut client) = socket_pair().await;
        let region = FileRegion {
            file,
            position: 1000,
            len: data.len() - 2000,
        };
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = client.read(&mut buf).await.unwrap();
                if n == 0 {
                    break got;
                }
                got.extend_from_slice(&buf[..n]);
                tokio::time::sleep(std::time::Duration::from_micros(200)).await;
            }
        });
        send_region(&server, &region).await.unwrap();
        drop(server);
        let got = reader.await.unwrap();
        assert_eq!(got.len(), data.len() - 2000);
        assert!(got == data[1000..data.len() - 1000], "bytes differ");
    }

    #[tokio::test]
    async fn a_deleted_file_is_still_sent_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.log");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        let (server, mut client) = socket_pair().await;
        send_region(
            &server,
            &FileRegion {
                file,
                position: 2,
                len: 6,
            },
        )
        .await
        .unwrap();
        let mut got = [0u8; 6];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"234567");
    }

    #[tokio::test]
    async fn a_file_truncated_under_the_send_is_an_error_not_a_short_frame() {
        let data = vec![7u8; 100_000];
        let file = file_with(&data);
        file.set_len(40_000).unwrap();
        let (server, mut client) = socket_pair().await;
        let region = FileRegion {
            file,
            position: 10_000,
            len: 90_000,
        };
        let error = send_region(&server, &region).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(error.to_string().contains("ends at byte 40000"), "{error}");
        drop(server);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), 30_000, "what was there went out before the error");
    }
}

//! Kafka framing: every request and response is a 4-byte big-endian length followed by that many bytes.
//! A request's length is checked against `socket.request.max.bytes` before any of it is read.

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("request of {size} bytes exceeds socket.request.max.bytes={max}; the client sent an oversize or malformed frame")]
    TooLarge { size: i64, max: usize },
    #[error("request frame has an invalid size {0}")]
    Negative(i32),
    #[error("connection closed in the middle of a request")]
    Truncated,
    #[error("reading from the socket failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the 4-byte length prefix. `Ok(None)` means the peer closed the connection cleanly.
pub async fn read_frame_size<R: AsyncRead + Unpin>(reader: &mut R, max: usize) -> Result<Option<usize>, FrameError> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = reader.read(&mut prefix[got..]).await?;
        if n == 0 {
            return if got == 0 { Ok(None) } else { Err(FrameError::Truncated) };
        }
        got += n;
    }
    let size = i32::from_be_bytes(prefix);
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    if size as usize > max {
        return Err(FrameError::TooLarge { size: size as i64, max });
    }
    Ok(Some(size as usize))
}

/// Reads exactly `size` bytes of frame body.
pub async fn read_frame_body<R: AsyncRead + Unpin>(reader: &mut R, size: usize) -> Result<BytesMut, FrameError> {
    let mut body = BytesMut::zeroed(size);
    reader.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io(e)
        }
    })?;
    Ok(body)
}

/// Starts a response frame: reserves the 4-byte length, to be filled in by `finish_frame`.
pub fn start_frame(capacity: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(capacity + 4);
    buf.put_i32(0);
    buf
}

pub fn finish_frame(buf: &mut BytesMut) {
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sizes_are_checked_before_reading() {
        let mut data: &[u8] = &[0, 0, 0, 5, 1, 2, 3, 4, 5];
        assert_eq!(read_frame_size(&mut data, 10).await.unwrap(), Some(5));
        assert_eq!(&read_frame_body(&mut data, 5).await.unwrap()[..], &[1, 2, 3, 4, 5]);
        let mut big: &[u8] = &[0x0c, 0x80, 0, 0];
        assert!(matches!(
            read_frame_size(&mut big, 100).await,
            Err(FrameError::TooLarge { .. })
        ));
        let mut neg: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame_size(&mut neg, 100).await,
            Err(FrameError::Negative(-1))
        ));
        let mut empty: &[u8] = &[];
        assert_eq!(read_frame_size(&mut empty, 100).await.unwrap(), None);
        let mut short: &[u8] = &[0, 0];
        assert!(matches!(
            read_frame_size(&mut short, 100).await,
            Err(FrameError::Truncated)
        ));
    }
}

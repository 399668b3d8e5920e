//! The X-Ray daemon's UDP listener.
//!
//! Datagrams are read in batches (everything the socket holds, up to
//! `MAX_BATCH_DATAGRAMS`, without waiting in between), parsed and converted at
//! once, and handed to a writer task in batches. UDP has no acknowledgement and
//! no backpressure: when ingest has no room the batch is dropped and counted,
//! and the socket keeps being drained so the kernel buffer does not overflow
//! silently. Nothing in a datagram can stop the loop.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::convert::convert_segment;
use super::segment::{parse_datagram, DropReason, MAX_DATAGRAM_BYTES};
use crate::ingest::{Ingest, Reservation};
use crate::model::Span;
use crate::telemetry::Telemetry;

/// Receiver label on the metrics.
pub const XRAY: &str = "xray";

/// Datagrams read per batch before it is handed on.
const MAX_BATCH_DATAGRAMS: usize = 256;
/// Batches waiting for the writer; beyond this, new batches are dropped.
const QUEUED_BATCHES: usize = 64;
/// Batches the writer merges into one storage write.
const MERGE_BATCHES: usize = 16;

pub struct XrayUdp {
    pub ingest: Arc<Ingest>,
    pub telemetry: Arc<Telemetry>,
    /// Deepest subsegment nesting accepted.
    pub max_depth: usize,
}

struct Batch {
    spans: Vec<Span>,
    datagrams: u64,
    _reservation: Reservation,
}

/// Binds the UDP socket with a receive buffer of at least `receive_buffer`
/// bytes when the system allows it; returns the socket and the size obtained.
pub fn bind(addr: SocketAddr, receive_buffer: usize) -> io::Result<(UdpSocket, usize)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = socket.set_recv_buffer_size(receive_buffer);
    if socket.recv_buffer_size()? < receive_buffer {
        force_receive_buffer(&socket, receive_buffer);
    }
    let obtained = socket.recv_buffer_size()?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok((UdpSocket::from_std(socket.into())?, obtained))
}

/// `SO_RCVBUFFORCE` lifts the `net.core.rmem_max` cap for a privileged process.
fn force_receive_buffer(socket: &socket2::Socket, bytes: usize) {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid socket descriptor and a c_int option value of the right size.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result != 0 {
        tracing::warn!(
            requested = bytes,
            "could not raise the X-Ray UDP receive buffer (raise net.core.rmem_max)"
        );
    }
}

impl XrayUdp {
    fn drop_datagrams(&self, reason: DropReason, count: u64) {
        self.telemetry
            .requests_rejected(XRAY, reason.label(), count);
    }

    /// Parses and converts one datagram into `spans`, or counts why it was dropped.
    fn accept(&self, datagram: &[u8], spans: &mut Vec<Span>) {
        match parse_datagram(datagram).and_then(|s| convert_segment(s, self.max_depth)) {
            Ok(converted) => spans.extend(converted),
            Err(reason) => self.drop_datagrams(reason, 1),
        }
    }
}

/// Receives until `shutdown`, then lets the writer finish what it holds.
pub async fn serve(
    socket: UdpSocket,
    receiver: Arc<XrayUdp>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let (batches, queue) = mpsc::channel(QUEUED_BATCHES);
    let writer = tokio::spawn(write_batches(queue, receiver.clone()));
    // One byte more than allowed, so an oversized datagram is seen as such.
    let mut buffer = vec![0u8; MAX_DATAGRAM_BYTES + 1];
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            ready = socket.readable() => ready?,
        }
        let mut spans = Vec::new();
        let mut datagrams = 0u64;
        let mut bytes = 0usize;
        for _ in 0..MAX_BATCH_DATAGRAMS {
            match socket.try_recv_from(&mut buffer) {
                Ok((len, _)) => {
                    datagrams += 1;
                    bytes += len;
                    receiver.accept(&buffer[..len], &mut spans);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ICMP errors surface here on some systems; the socket is fine.
                Err(e) => {
                    tracing::debug!(error = %e, "X-Ray UDP receive error");
                    break;
                }
            }
        }
        if spans.is_empty() {
            continue;
        }
        let reservation = match receiver.ingest.reserve(bytes) {
            Ok(reservation) => reservation,
            Err(_) => {
                receiver.drop_datagrams(DropReason::Overloaded, datagrams);
                continue;
            }
        };
        let batch = Batch {
            spans,
            datagrams,
            _reservation: reservation,
        };
        if let Err(mpsc::error::TrySendError::Full(batch)) = batches.try_send(batch) {
            receiver.drop_datagrams(DropReason::Overloaded, batch.datagrams);
        }
    }
    drop(batches);
    writer
        .await
        .map_err(|e| io::Error::other(format!("X-Ray writer task: {e}")))
}

async fn write_batches(mut queue: mpsc::Receiver<Batch>, receiver: Arc<XrayUdp>) {
    while let Some(first) = queue.recv().await {
        let mut merged = vec![first];
        while merged.len() < MERGE_BATCHES {
            match queue.try_recv() {
                Ok(batch) => merged.push(batch),
                Err(_) => break,
            }
        }
        let spans: Vec<Span> = merged
            .iter_mut()
            .flat_map(|b| std::mem::take(&mut b.spans))
            .collect();
        let count = spans.len() as u64;
        // Spans over a trace's limit are counted by ingest; UDP has no answer.
        match receiver.ingest.write(XRAY, spans).await {
            Ok(written) => receiver.telemetry.spans_received(XRAY, written.stored),
            Err(error) => {
                tracing::warn!(%error, spans = count, "X-Ray spans could not be stored");
                receiver
                    .telemetry
                    .spans_rejected(XRAY, "storage_unavailable", count);
            }
        }
    }
}

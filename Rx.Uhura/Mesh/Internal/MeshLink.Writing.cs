using Rx.Uhura.Internal;

namespace Rx.Uhura.Mesh.Internal;

/// <summary>The write side: frames into the outbox, a graceful close after what was queued, or an abort.</summary>
internal sealed partial class MeshLink
{
    /// <summary>Queues bytes; false when the link is closing. Past the outbound limit the link is dropped (slow consumer).</summary>
    public bool Enqueue(OutFrame frame)
    {
        if (IsClosing)
        {
            return false;
        }

        lock (_writeGate)
        {
            if (IsClosing)
            {
                return false; // closed meanwhile: a frame after the last one would be lost in the half-close
            }

            if (_outbox.BufferedBytes + frame.Length > _node.Options.MaxOutboundBufferBytes)
            {
                Abort(new PeerLostException($"More than {_node.Options.MaxOutboundBufferBytes} bytes wait to be written to peer {RemoteId ?? "(unidentified)"}; the link is dropped as a slow consumer.", RemoteId));
                return false;
            }

            if (frame.Head is { } head)
            {
                _outbox.Pending.Write(head);
            }

            _outbox.Pending.Write(frame.Body.Span);
            _outbox.Schedule();
        }

        Liveness.NoteWrite();
        return true;
    }

    public bool Enqueue(byte[] frame) => Enqueue(new OutFrame(null, frame));

    /// <summary>Writes what is queued (and <paramref name="last"/>), then closes the socket. <paramref name="reason"/> null = on purpose.</summary>
    public void CloseAfter(byte[]? last, Exception? reason)
    {
        if (last is not null)
        {
            Enqueue(last);
        }

        if (BeginClosing(graceful: true))
        {
            CloseReason = reason;
            ClosingSince = _node.Time.GetTimestamp();
        }

        _closingSignal.TrySetResult();
    }

    /// <summary>Ends the output after what was queued: the writer finishes, then the peer is told the link ends (half-close).</summary>
    private async Task HalfCloseWhenWrittenAsync()
    {
        try
        {
            await _outbox.WhenDrainedAsync().ConfigureAwait(false);
            if (!_aborted)
            {
                await Transport.HalfClose.SendAsync(_stream).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or System.Net.Sockets.SocketException or NotSupportedException)
        {
            // the write failed: the link is aborted (WriteFailed), nothing is left to end gracefully
        }
    }

    /// <summary>Completes once the output ended: set under the write lock by the first close, graceful or not.</summary>
    private Task _writing = Task.CompletedTask;

    /// <summary>
    /// Marks the link closing, under the write lock so that no frame is appended after it; true the first time, which
    /// (when <paramref name="graceful"/>) starts ending the output after what was queued.
    /// </summary>
    private bool BeginClosing(bool graceful)
    {
        lock (_writeGate)
        {
            if (Interlocked.Exchange(ref _closing, 1) != 0)
            {
                return false;
            }

            if (graceful)
            {
                _writing = HalfCloseWhenWrittenAsync();
            }

            return true;
        }
    }

    /// <summary>The task that ends the output (read once the link is closing).</summary>
    private Task Writing
    {
        get
        {
            lock (_writeGate)
            {
                return _writing;
            }
        }
    }

    /// <summary>When a graceful close began (a timestamp of the node's clock).</summary>
    public long? ClosingSince { get; private set; }

    /// <summary>Closes at once, dropping whatever is queued.</summary>
    public void Abort(Exception? reason)
    {
        _aborted = true; // before closing: the writer stops at its next turn and nothing is half-closed
        if (BeginClosing(graceful: false))
        {
            CloseReason = reason;
        }

        _closingSignal.TrySetResult();

        // Callers may hold the node's lock: cancelling socket operations runs callbacks that may need it.
        CancelSoon(_cancel);
    }

    /// <summary>Cancels on the thread pool, never inline (a disposed source means there is nothing left to cancel).</summary>
    internal static void CancelSoon(CancellationTokenSource source) => ThreadPool.UnsafeQueueUserWorkItem(
        static s =>
        {
            try
            {
                s.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        },
        source,
        preferLocal: false);

    private static void DisposeQuietly(Stream stream)
    {
        try
        {
            stream.Dispose();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
        }
    }

    bool IOutboxOwner.OutboxClosed => _aborted;

    void IOutboxOwner.WrittenLocked(List<OutboundMessage> written)
    {
    }

    void IOutboxOwner.Written(int bytes, List<OutboundMessage> written)
    {
    }

    void IOutboxOwner.WriteFailed(Exception error)
        => Abort(new PeerLostException("The connection to the peer was lost: " + error.Message, RemoteId, error));
}

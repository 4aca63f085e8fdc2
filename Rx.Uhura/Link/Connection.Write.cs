using Microsoft.Extensions.Logging;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;
using Rx.Uhura.Session;

namespace Rx.Uhura;

public sealed partial class Connection
{
    /// <summary>Writes a protocol element in legacy array form (<c>_set</c>, <c>start</c>), as Node's <c>_send</c> does.</summary>
    private void WriteInternal(byte[] payload)
    {
        lock (_gate)
        {
            if (OutputHasEnded)
            {
                return;
            }

            WriteSeparatorLocked();
            NodeWireCodec.WriteLegacy(_pending, payload);
            ScheduleWriteLocked();
        }
    }

    /// <summary>Writes several acks at once (one write for a dispatcher's run of delivered events).</summary>
    private void SendAcks(List<string> ids)
    {
        lock (_gate)
        {
            if (OutputHasEnded)
            {
                return;
            }

            foreach (var id in ids)
            {
                WriteSeparatorLocked();
                NodeWireCodec.WriteAck(_pending, id);
            }

            ScheduleWriteLocked();
        }
    }

    private void SendAck(string id)
    {
        lock (_gate)
        {
            if (OutputHasEnded)
            {
                return;
            }

            WriteSeparatorLocked();
            NodeWireCodec.WriteAck(_pending, id);
            ScheduleWriteLocked();
        }
    }

    /// <summary>
    /// <see cref="SlowConsumerPolicy.Disconnect"/>: nothing more is written to this peer, and the link ends (off the
    /// caller's lock) with a <see cref="SlowConsumerException"/>. The message is handed over with the undelivered ones.
    /// </summary>
    private OutboundMessage? _slowConsumerHeld;

    private void DisconnectSlowConsumerLocked(OutboundMessage message, string what)
    {
        Reach(LinkProgress.OutputEnded);
        message.StampOrder(); // before the sends refused from now on, which follow the session while it is handed back
        _slowConsumerHeld = message;
        var error = new SlowConsumerException($"Connection {Id} read too slowly: {what}; it was disconnected.") { ConnectionId = Id };
        _logger.LogWarning("Connection {Id}: disconnected as a slow consumer: {What}", Id, what);
        ThreadPool.UnsafeQueueUserWorkItem(static state => state.Connection.Shutdown(new DisconnectInfo(DisconnectReason.SlowConsumer, state.Error)), (Connection: this, Error: error), preferLocal: false);
    }

    private void WriteMessageLocked(OutboundMessage message)
    {
        if (OutputHasEnded)
        {
            message.Fail(new SendAfterCloseException(message.Name) { ConnectionId = Id });
            return;
        }

        if (_pending.WrittenCount + message.Payload.Length > _options.MaxOutboundBufferBytes && _pending.WrittenCount > 0)
        {
            if (_options.SlowConsumerPolicy == SlowConsumerPolicy.Disconnect)
            {
                DisconnectSlowConsumerLocked(message, $"{_pending.WrittenCount} bytes waited to be written (MaxOutboundBufferBytes {_options.MaxOutboundBufferBytes})");
                return;
            }

            message.Fail(new OutboundBufferFullException(message.Name, $"{_pending.WrittenCount} bytes already wait to be written.") { ConnectionId = Id });
            return;
        }

        if (_acksEnabled && PendingAcksLocked >= _options.MaxPendingAcks && IsApplicationEvent(message.Name))
        {
            // A peer that reads but does not acknowledge: what waits for its acks is bounded too.
            if (_options.SlowConsumerPolicy == SlowConsumerPolicy.Disconnect)
            {
                DisconnectSlowConsumerLocked(message, $"{PendingAcksLocked} sends waited for acknowledgement (MaxPendingAcks {_options.MaxPendingAcks})");
                return;
            }

            message.Fail(new OutboundBufferFullException(message.Name, $"{PendingAcksLocked} sends already wait for acknowledgement.") { ConnectionId = Id });
            return;
        }

        if (_wire is WireProtocol.Native or WireProtocol.SocketIpc || IsApplicationEvent(message.Name))
        {
            Diagnostics.UhuraMetrics.EventsSent.Add(1, _sideTag); // not the Node wire's own 'connect' and 'invalidateSession'
        }

        _eventsOut++;
        _heldBytes += message.Payload.Length; // until written (no acks) or acknowledged
        if (_wire == WireProtocol.Native)
        {
            WriteNativeEventLocked(message);
            ScheduleWriteLocked();
            return;
        }

        if (_wire == WireProtocol.SocketIpc)
        {
            if (_options.SocketIpcTranscoder is { } transcoder && transcoder is not JsonSocketIpcTranscoder)
            {
                transcoder.Encode(message.Name, message.ArgumentsBody, message.HasArguments, _pending);
            }
            else
            {
                SocketIpcCodec.Write(_pending, message);
            }

            _pendingWaiters.Add(message); // no acks: done once written
            ScheduleWriteLocked();
            return;
        }

        WriteSeparatorLocked();
        if (!_objectMode)
        {
            NodeWireCodec.WriteLegacy(_pending, message.Payload);
            _pendingWaiters.Add(message);
        }
        else if (_acksEnabled)
        {
            if (message.Seq == 0)
            {
                message.Seq = ++_nextSeq;
            }

            _inflight[message.Seq] = message;
            if (!IsApplicationEvent(message.Name))
            {
                _protocolInflight++;
            }

            NodeWireCodec.WriteObject(_pending, message.Payload, _idPrefixUtf8, message.Seq);
        }
        else
        {
            NodeWireCodec.WriteObject(_pending, message.Payload, _idPrefixUtf8, 0);
            _pendingWaiters.Add(message);
        }

        ScheduleWriteLocked();
    }

    private void WriteSeparatorLocked()
    {
        if (_wroteFirst)
        {
            _pending.Write(NodeWireCodec.Separator);
        }
        else
        {
            _pending.Write(NodeWireCodec.OpenArray);
            _wroteFirst = true;
        }
    }

    /// <summary>Ends the JSON array cleanly (<c>\n]\n</c>); nothing may be written after it.</summary>
    private void EndOutputLocked()
    {
        if (OutputHasEnded)
        {
            return;
        }

        if (_wire == WireProtocol.SocketIpc)
        {
            Reach(LinkProgress.OutputEnded); // nothing marks the end: the half-close does
            ScheduleWriteLocked();
            return;
        }

        if (_wire == WireProtocol.Native)
        {
            if (HandshakeDone)
            {
                Protocol.Native.NativeFrameWriter.WriteClose(_pending, Protocol.Native.NativeCloseCodes.Normal, string.Empty);
            }

            Reach(LinkProgress.OutputEnded);
            ScheduleWriteLocked();
            return;
        }

        if (!_wroteFirst)
        {
            _pending.Write(NodeWireCodec.OpenArray);
            _wroteFirst = true;
        }

        _pending.Write(NodeWireCodec.CloseArray);
        Reach(LinkProgress.OutputEnded);
        ScheduleWriteLocked();
    }

    private void ScheduleWriteLocked()
    {
        if (_writerActive || HasEnded)
        {
            return;
        }

        _writerActive = true;
        if (_readBatchThread == Environment.CurrentManagedThreadId)
        {
            // The read loop is handling a batch (acks, replies sent by handlers): it writes them itself when the batch is
            // done, in one syscall and without a thread hop.
            _writeOwed = true;
            return;
        }

        // A lone sender's writer goes to the global queue, where an idle worker takes it at once (in the sender's local
        // queue it would wait to be stolen). A broadcast's writers go to the broadcasting thread's local queue: other
        // workers steal them while it goes on, and those it still holds when done carry more events per write.
        ThreadPool.UnsafeQueueUserWorkItem(static c => _ = c.WriteLoopAsync(), this, preferLocal: t_broadcasting);
    }

    /// <summary>True on a thread inside <see cref="UhuraServer.Broadcast"/>.</summary>
    [ThreadStatic]
    internal static bool t_broadcasting;

    /// <summary>The read loop starts handling a batch: writes scheduled on its thread wait for <see cref="EndReadBatch"/>.</summary>
    private void BeginReadBatch()
    {
        lock (_gate)
        {
            _readBatchThread = Environment.CurrentManagedThreadId;
        }

        _batch = _dispatcher.EnterBatch() ? BatchState.Open : BatchState.Refused;
    }

    /// <summary>The read loop finished a batch: it writes what the batch produced itself, before waiting for more input.</summary>
    private void EndReadBatch()
    {
        bool owed;
        lock (_gate)
        {
            _readBatchThread = 0;
            owed = _writeOwed;
            _writeOwed = false;
        }

        SignalDeliveries();
        if (_batch == BatchState.Open)
        {
            _dispatcher.ExitBatch();
        }

        _batch = BatchState.None; // a second call (a refusal ends its batch early) changes nothing
        if (owed)
        {
            _ = WriteLoopAsync();
        }
    }

    /// <summary>
    /// The only writer of the socket: swaps the pending buffer out and writes it whole, so many events queued while a
    /// write is in flight go out in one syscall, and a lone event goes out at once.
    /// </summary>
    private async Task WriteLoopAsync()
    {
        while (true)
        {
            lock (_gate)
            {
                if (_pending.WrittenCount == 0 || HasEnded)
                {
                    _writerActive = false;
                    _pending.Release(); // an idle link holds no buffer
                    _writing.Release();
                    _drained?.TrySetResult();
                    _drained = null;
                    return;
                }

                (_pending, _writing) = (_writing, _pending);
                if (_pendingWaiters.Count > 0)
                {
                    _writingWaiters = _pendingWaiters;
                    _pendingWaiters = new List<OutboundMessage>();
                }
            }

            try
            {
                await _writing.WriteToAsync(_stream).ConfigureAwait(false);
                await _stream.FlushAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or System.Net.Sockets.SocketException or NotSupportedException)
            {
                lock (_gate)
                {
                    _writerActive = false;
                    _drained?.TrySetException(ex);
                    _drained = null;
                }

                Shutdown(new DisconnectInfo(_closing ? DisconnectReason.LocalClose : DisconnectReason.TransportError, _closing ? null : ex));
                return;
            }

            Diagnostics.UhuraMetrics.BytesSent.Add(_writing.WrittenCount, _sideTag);
            _bytesOut += _writing.WrittenCount;
            _writing.Reset();
            NoteWrite();
            List<OutboundMessage> written;
            lock (_gate)
            {
                written = _writingWaiters;
                if (written.Count > 0)
                {
                    _writingWaiters = new List<OutboundMessage>();
                    foreach (var message in written)
                    {
                        _heldBytes -= message.Payload.Length;
                    }
                }
            }

            foreach (var message in written)
            {
                message.Succeed();
            }

            CheckIdle();
        }
    }
}

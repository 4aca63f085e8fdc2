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
            NodeWireCodec.WriteLegacy(_outbox.Pending, payload);
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
                NodeWireCodec.WriteAck(_outbox.Pending, id);
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
            NodeWireCodec.WriteAck(_outbox.Pending, id);
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

        if (_outbox.PendingBytes + message.Payload.Length > _options.MaxOutboundBufferBytes && _outbox.PendingBytes > 0)
        {
            if (_options.SlowConsumerPolicy == SlowConsumerPolicy.Disconnect)
            {
                DisconnectSlowConsumerLocked(message, $"{_outbox.PendingBytes} bytes waited to be written (MaxOutboundBufferBytes {_options.MaxOutboundBufferBytes})");
                return;
            }

            message.Fail(new OutboundBufferFullException(message.Name, $"{_outbox.PendingBytes} bytes already wait to be written.") { ConnectionId = Id });
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

        var handler = Handler;
        if (handler.CountsAsEvent(message.Name))
        {
            Diagnostics.UhuraMetrics.EventsSent.Add(1, _sideTag);
        }

        _eventsOut++;
        _heldBytes += message.Payload.Length; // until written (no acks) or acknowledged
        handler.WriteEventLocked(message);
    }

    private void WriteSeparatorLocked()
    {
        if (_wroteFirst)
        {
            _outbox.Pending.Write(NodeWireCodec.Separator);
        }
        else
        {
            _outbox.Pending.Write(NodeWireCodec.OpenArray);
            _wroteFirst = true;
        }
    }

    /// <summary>Ends this side's output with the wire's end mark (the Node wire closes its array); nothing may be written after it.</summary>
    private void EndOutputLocked()
    {
        if (OutputHasEnded)
        {
            return;
        }

        Handler.EndOutputLocked();
    }

    private void ScheduleWriteLocked() => _outbox.Schedule(preferLocal: t_broadcasting);

    /// <summary>True on a thread inside <see cref="UhuraServer.Broadcast"/>: its writers go to its local queue (see <see cref="Outbox.Schedule"/>).</summary>
    [ThreadStatic]
    internal static bool t_broadcasting;

    /// <summary>The read loop starts handling a batch: writes scheduled on its thread wait for <see cref="EndReadBatch"/>.</summary>
    private void BeginReadBatch()
    {
        _outbox.BeginBatch();
        _batch = _dispatcher.EnterBatch() ? BatchState.Open : BatchState.Refused;
    }

    /// <summary>The read loop finished a batch: it writes what the batch produced itself, before waiting for more input.</summary>
    private void EndReadBatch()
    {
        var owed = _outbox.EndBatch();
        SignalDeliveries();
        if (_batch == BatchState.Open)
        {
            _dispatcher.ExitBatch();
        }

        _batch = BatchState.None; // a second call (a refusal ends its batch early) changes nothing
        if (owed)
        {
            _outbox.WriteOwed();
        }
    }

    bool IOutboxOwner.OutboxClosed => HasEnded;

    void IOutboxOwner.WrittenLocked(List<OutboundMessage> written)
    {
        foreach (var message in written)
        {
            _heldBytes -= message.Payload.Length;
        }
    }

    void IOutboxOwner.Written(int bytes, List<OutboundMessage> written)
    {
        Diagnostics.UhuraMetrics.BytesSent.Add(bytes, _sideTag);
        _bytesOut += bytes;
        NoteWrite();
        foreach (var message in written)
        {
            message.Succeed();
        }

        CheckIdle();
    }

    void IOutboxOwner.WriteFailed(Exception error)
        => Shutdown(new DisconnectInfo(_closing ? DisconnectReason.LocalClose : DisconnectReason.TransportError, _closing ? null : error));
}

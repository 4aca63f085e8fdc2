using Microsoft.Extensions.Logging;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;
using Rx.Uhura.Session;

namespace Rx.Uhura;

public sealed partial class Connection
{
    /// <summary>Slots the sends awaiting acknowledgement (native list, Node-wire table) keep once all were acknowledged (a burst's are let go).</summary>
    internal const int KeepUnackedSlots = 256;

    private void ResolveCumulativeAck(long upTo)
    {
        List<OutboundMessage>? done = null;
        lock (_gate)
        {
            if (upTo <= _ackedUpTo)
            {
                return;
            }

            if (upTo > _native!.LastSent)
            {
                throw new ProtocolException($"An ack for {upTo} arrived, but only {_native.LastSent} were sent.");
            }

            while (_unacked.TryPeek(out var message) && message.Seq <= upTo)
            {
                _unacked.Dequeue();
                _heldBytes -= message.Payload.Length;
                if (message.Completion is not null)
                {
                    (done ??= []).Add(message);
                }
            }

            _ackedUpTo = upTo;
            if (_unacked.Count == 0 && _unacked.Capacity > KeepUnackedSlots)
            {
                _unacked.TrimExcess(); // all acknowledged: a burst's slots are let go
            }
        }

        MarkProgress();
        if (done is not null)
        {
            foreach (var message in done)
            {
                message.Succeed();
            }
        }

        if (Volatile.Read(ref _idle) is not null)
        {
            CheckIdle();
        }
    }

    private void ResolveAck(ReadOnlySpan<char> id)
    {
        if (!id.StartsWith(_idPrefix, StringComparison.Ordinal)
            || !long.TryParse(id[_idPrefix.Length..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ackId))
        {
            _logger.LogDebug("Connection {Id}: ignoring an ack for a foreign id", Id);
            return;
        }

        OutboundMessage? message;
        lock (_gate)
        {
            if (!_inflight.Remove(ackId, out message))
            {
                return;
            }

            _heldBytes -= message.Payload.Length;
            if (_inflight.Count == 0 && _inflight.Capacity > KeepUnackedSlots)
            {
                _inflight.TrimExcess(); // all acknowledged: a burst's slots are let go
            }

            if (!IsApplicationEvent(message.Name))
            {
                _protocolInflight--;
            }
        }

        if (IsApplicationEvent(message.Name))
        {
            MarkProgress();
        }

        message.Succeed();
        CheckIdle();
    }

    /// <summary>
    /// Completes when every event sent or posted so far on this link has been acknowledged by the peer (or, on a link
    /// without acks, written to the socket): the way to confirm a run of <see cref="Post"/>s. Fails with
    /// <see cref="ConnectionLostException"/> when the link ends with events still unacknowledged.
    /// </summary>
    public async Task WhenAcknowledgedAsync()
    {
        if (!await WhenIdleAsync().ConfigureAwait(false))
        {
            throw new ConnectionLostException("(any)") { ConnectionId = Id };
        }
    }

    /// <summary>Completes with true when nothing waits to be written or acknowledged, with false when the link ended first with events undelivered.</summary>
    private Task<bool> WhenIdleAsync()
    {
        lock (_gate)
        {
            if (HasEnded)
            {
                return Task.FromResult(!_endedUndelivered);
            }

            if (IsIdleLocked())
            {
                return Task.FromResult(true);
            }

            _idle ??= new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            return _idle.Task;
        }
    }

    /// <summary>Completes once everything buffered was written to the socket, or at once when the link has ended.</summary>
    private Task WhenDrainedAsync() => _outbox.WhenDrainedAsync();

    private void CheckIdle()
    {
        lock (_gate)
        {
            if (_idle is not null && IsIdleLocked())
            {
                _idle.TrySetResult(true);
                _idle = null;
            }
        }
    }

    private bool IsIdleLocked() => _preReady.Count == 0 && _outbox.WaitingForWrite == 0
        && _inflight.Count == 0 && _unacked.Count == 0;

    private List<OutboundMessage> CollectUndeliveredLocked()
    {
        var list = new List<OutboundMessage>(_preReady.Count + _inflight.Count + _unacked.Count + _outbox.WaitingForWrite);
        list.AddRange(_unacked);
        list.AddRange(_inflight.Values.OrderBy(m => m.Seq));
        _unacked.Clear();
        _outbox.TakeWaiters(list);
        list.AddRange(_preReady);
        if (_slowConsumerHeld is { } held)
        {
            list.Add(held);
            _slowConsumerHeld = null;
        }

        _inflight.Clear();
        _protocolInflight = 0;
        _heldBytes = 0;
        _preReady.Clear();
        _endedUndelivered |= list.Count > 0;
        _idle?.TrySetResult(list.Count == 0);
        _idle = null;
        return list;
    }
}

using System.Buffers;
using System.Text;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;
using Rx.Uhura.Protocol.Native;
using Rx.Uhura.Session;

namespace Rx.Uhura;

public sealed partial class Connection
{
    private void WriteNativeEventLocked(OutboundMessage message)
    {
        var nameJson = message.Payload.AsSpan(2, message.NameEnd - 3); // the name as encoded in the payload, between its quotes
        var escaped = nameJson.IndexOf((byte)'\\') >= 0;
        if (nameJson.Length > ushort.MaxValue && (!escaped || Encoding.UTF8.GetByteCount(message.Name) > ushort.MaxValue))
        {
            // Refused before it takes a sequence number (a number never sent would be a gap that ends the link). Events
            // made by this library are refused when created; this is one that came another way (a backplane).
            message.Fail(new EncodeException(message.Name[..64] + "…", $"the name is too long for the native wire (at most {ushort.MaxValue} bytes of UTF-8)."));
            return;
        }

        if (message.Seq == 0)
        {
            message.Seq = ++_native!.LastSent;
        }

        if (!escaped)
        {
            NativeFrameWriter.WriteEventHeader(_outbox.Pending, (ulong)message.Seq, nameJson, message.NativeArgsLength);
        }
        else
        {
            NativeFrameWriter.WriteEventHeader(_outbox.Pending, (ulong)message.Seq, message.Name, message.NativeArgsLength); // escaped in JSON
        }

        message.WriteNativeArgs(_outbox.Pending);
        if (_acksEnabled)
        {
            _unacked.Enqueue(message);
        }
        else
        {
            _outbox.CompleteWhenWritten(message);
        }
    }

    private void WriteNativeAck(long upTo)
    {
        lock (_gate)
        {
            if (OutputHasEnded)
            {
                return;
            }

            NativeFrameWriter.WriteAck(_outbox.Pending, (ulong)upTo);
            ScheduleWriteLocked();
        }
    }

    private void WriteNativeSet(JObject changes)
    {
        lock (_gate)
        {
            if (OutputHasEnded)
            {
                return;
            }

            if (!HandshakeDone)
            {
                // Hello is gone and nothing but Hello may precede Welcome: send these changes right after it.
                _setBeforeWelcome ??= new JObject();
                _setBeforeWelcome.Merge(changes);
                return;
            }

            WriteNativeSetLocked(changes);
            ScheduleWriteLocked();
        }
    }

    private void WriteNativeControl(Action<IBufferWriter<byte>, ulong> write, ulong value)
    {
        lock (_gate)
        {
            if (OutputHasEnded)
            {
                return;
            }

            write(_outbox.Pending, value);
            ScheduleWriteLocked();
        }
    }

    /// <summary>Sends Ping when nothing was written for an interval; drops the link when nothing was read for two.</summary>
    private void StartHeartbeats(TimeSpan interval)
    {
        if (interval <= TimeSpan.Zero)
        {
            return;
        }

        _heartbeatInterval = interval;
        var time = _options.TimeProvider;
        var liveness = new Liveness(time);
        if (Volatile.Read(ref _deliveryBackpressured))
        {
            liveness.Suspend();
        }

        _liveness = liveness;
        var tick = TimeSpan.FromTicks(Math.Max(interval.Ticks / 2, 1));
        _heartbeatTimer = time.CreateTimer(static state => ((Connection)state!).HeartbeatTick(), this, tick, tick);
    }

    private void HeartbeatTick()
    {
        if (HasEnded)
        {
            return;
        }

        switch (_liveness!.Check(2 * _heartbeatInterval, _heartbeatInterval))
        {
            case LivenessVerdict.PeerSilent:
                _logger.LogInformation("Connection {Id}: nothing received for {Timeout}; dropping the link", Id, 2 * _heartbeatInterval);
                Shutdown(new DisconnectInfo(DisconnectReason.TransportError, new TimeoutException($"No frame from the peer for {(2 * _heartbeatInterval).TotalMilliseconds} ms (heartbeat timeout).")));
                break;
            case LivenessVerdict.Ping:
                WriteNativeControl(static (output, nonce) => NativeFrameWriter.WritePing(output, nonce), (ulong)_options.TimeProvider.GetTimestamp());
                break;
        }
    }

    private void NoteWrite() => _liveness?.NoteWrite();
}

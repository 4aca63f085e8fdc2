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

/// <summary>The native protocol (docs/PROTOCOL.md, "Native protocol"): handshake, sequenced events, cumulative acks, resume, heartbeats.</summary>
public sealed partial class Connection
{
    private NativeStream? _native;
    private Utf8NameCache? _namesCache;
    private NativeFrameReader? _nativeReader;
    private JObject? _setBeforeWelcome;
    private bool _peerClosed;
    private long _ackedUpTo;
    private TimeSpan _heartbeatInterval;
    private ITimer? _heartbeatTimer;
    private Liveness? _liveness; // made when heartbeats start

    /// <summary>Event names recently read on this link (made on the first event: an idle link has none).</summary>
    private Utf8NameCache Names => _namesCache ??= new Utf8NameCache();

    /// <summary>The native wire's reader (made on the first frame).</summary>
    private NativeFrameReader NativeReader => _nativeReader ??= new NativeFrameReader(_options.MaxMessageSize, Names);

    /// <summary>The wire this link speaks (a server learns it from the client's first byte).</summary>
    public WireProtocol Wire => _handler?.Protocol ?? WireProtocol.Native;

    /// <summary>Reads the preface and whole frames from <paramref name="buffer"/>; acks once per batch.</summary>
    private async ValueTask<ReadProgress> ReadNativeAsync(ReadOnlySequence<byte> buffer)
    {
        var consumed = buffer.Start;
        var examined = buffer.Start;
        if (_handshake == HandshakeProgress.Awaiting)
        {
            if (!NativePreface.TryRead(buffer, out var afterPreface, out var version))
            {
                return new ReadProgress(consumed, buffer.End);
            }

            if (version != NativePreface.Version)
            {
                throw new ProtocolException($"The peer speaks native protocol version {version}; this side speaks {NativePreface.Version}.");
            }

            consumed = afterPreface;
            _handshake = HandshakeProgress.PrefaceRead;
        }

        while (!HasEnded)
        {
            NativeFrame frame;
            var next = consumed;
            var seen = examined;
            try
            {
                if (!NativeReader.TryParseMessage(buffer.Slice(next), ref next, ref seen, out frame))
                {
                    examined = seen;
                    break;
                }
            }
            catch (FrameTooLargeException tooLarge) when (PeekEventSequence(buffer.Slice(consumed)) is { } seq)
            {
                await RefuseEventAsync(seq, tooLarge).ConfigureAwait(false);
                throw;
            }

            consumed = next;
            examined = next;
            ValueTask pending;
            try
            {
                pending = HandleNativeFrame(frame);
            }
            catch (DecodeException undecodable) when (frame.Type == NativeFrameType.Event)
            {
                await RefuseEventAsync((long)frame.Sequence, undecodable).ConfigureAwait(false);
                throw;
            }

            if (!pending.IsCompletedSuccessfully)
            {
                SignalDeliveries(); // what this batch queued is delivered while the frame's handling waits
                await pending.ConfigureAwait(false);
            }
        }

        return new ReadProgress(consumed, examined);
    }

    /// <summary>The sequence number of the Event frame at the start of <paramref name="buffer"/>, when its header is buffered; null otherwise.</summary>
    private static long? PeekEventSequence(ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        if (reader.Remaining < NativeFrameReader.LengthPrefixSize + 1 + 8)
        {
            return null;
        }

        reader.Advance(NativeFrameReader.LengthPrefixSize);
        return reader.TryRead(out var type) && type == (byte)NativeFrameType.Event && reader.TryReadBigEndian(out long seq) ? seq : null;
    }

    /// <summary>
    /// The peer's next event cannot be read here (<see cref="NativeCloseCodes.EventRefused"/>): the events before it are
    /// acknowledged and Close tells the peer to fail that one send rather than send it again. The link then ends with
    /// <paramref name="error"/> as before. (Should the Close be lost, the peer resends the event as it always did.)
    /// </summary>
    private async ValueTask RefuseEventAsync(long seq, DecodeException error)
    {
        if (!HandshakeDone || !_acksEnabled || _native is not { } stream)
        {
            return; // without acks nothing is sent again anyway
        }

        lock (_serverSession?.Gate ?? stream.Gate)
        {
            if (seq != stream.LastReceived + 1)
            {
                return; // a gap or a resend: not the next event
            }
        }

        _logger.LogWarning("Connection {Id}: refused event {Seq}: {Reason}", Id, seq, error.Message);

        // Everything before the refused event is acknowledged first, so the peer knows which one it is; an ack promises
        // delivery, so it goes through the dispatcher after what precedes it. Should that take longer than CloseTimeout
        // (a blocked subscriber), no Close is sent and the peer resends as it always did.
        var acknowledged = WhenAckWrittenAsync(seq - 1);
        Dispatch(null, null, seq - 1);
        SignalDeliveries();
        try
        {
            await acknowledged.WaitAsync(_options.CloseTimeout, _options.TimeProvider).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return;
        }

        var reason = error.Message.Length <= 1000 ? error.Message : error.Message[..1000];
        lock (_gate)
        {
            if (OutputHasEnded)
            {
                return;
            }

            NativeFrameWriter.WriteClose(_outbox.Pending, NativeCloseCodes.EventRefused, reason);
            Reach(LinkProgress.OutputEnded);
            ScheduleWriteLocked();
        }

        EndReadBatch(); // this batch ends here: what it owes is written now, not after the link is gone
        try
        {
            await WhenDrainedAsync().WaitAsync(_options.CloseTimeout, _options.TimeProvider).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
        }
    }

    /// <summary>
    /// The peer could not read the first event it has not acknowledged: that send fails and is not sent again. The
    /// events written after it move down one sequence number (the peer still expects the refused one's), so they
    /// follow on without a gap when they are sent again on the next link.
    /// </summary>
    private void FailRefusedEvent(string reason)
    {
        OutboundMessage? refused = null;
        lock (_gate)
        {
            if (_native is { } stream && _unacked.TryPeek(out var first) && first.Seq == _ackedUpTo + 1)
            {
                _unacked.Dequeue();
                _heldBytes -= first.Payload.Length;
                refused = first;
                lock (stream.Gate)
                {
                    foreach (var later in _unacked)
                    {
                        later.Seq--;
                    }

                    stream.LastSent--;
                }
            }
        }

        refused?.Fail(new EncodeException(refused.Name, $"the peer could not read it ({reason}); it was not sent again.") { ConnectionId = Id });
    }

    private ValueTask HandleNativeFrame(in NativeFrame frame)
    {
        if (_handshake == HandshakeProgress.Refused)
        {
            return ValueTask.CompletedTask;
        }

        if (_peerClosed)
        {
            throw new ProtocolException($"A {frame.Type} frame arrived after the peer's Close.");
        }

        switch (frame.Type)
        {
            case NativeFrameType.Hello when IsServer && !Greeted:
                _handshake = HandshakeProgress.Greeted;
                return HandleHelloAsync(frame);
            case NativeFrameType.Welcome when !IsServer && !Greeted:
                _handshake = HandshakeProgress.Greeted;
                HandleWelcome(frame);
                return ValueTask.CompletedTask;
            case NativeFrameType.Hello or NativeFrameType.Welcome:
                throw new ProtocolException($"Unexpected {frame.Type} frame.");
            case NativeFrameType.Close when !IsServer && !Greeted:
                // The server turned the client away instead of welcoming it.
                _peerClosed = true;
                Shutdown(frame.CloseCode switch
                {
                    NativeCloseCodes.Unauthorized => new DisconnectInfo(DisconnectReason.Unauthorized, new AuthenticationFailedException(frame.Reason.Length > 0 ? frame.Reason : "Not authorized.") { ConnectionId = Id }),
                    NativeCloseCodes.SessionInUse => new DisconnectInfo(DisconnectReason.SessionInUse, new SessionInUseException(frame.Reason.Length > 0 ? frame.Reason : "The session is in use by another client.") { ConnectionId = Id }),
                    _ => new DisconnectInfo(DisconnectReason.RemoteClose),
                });
                return ValueTask.CompletedTask;
        }

        if (!HandshakeDone)
        {
            throw new ProtocolException($"A {frame.Type} frame arrived before the handshake completed.");
        }

        switch (frame.Type)
        {
            case NativeFrameType.Event:
                ReceiveNativeEvent(frame);
                break;
            case NativeFrameType.Set:
                var changes = ParseJson<JObject>(frame.Changes, "Set");
                CheckSessionLimits(changes);
                ReceiveNativeSet(changes, frame.Sequence);
                break;
            case NativeFrameType.Ack when !_acksEnabled:
                throw new ProtocolException("An Ack arrived on a link without acks.");
            case NativeFrameType.Ack:
                ResolveCumulativeAck((long)frame.Sequence);
                break;
            case NativeFrameType.Ping:
                WriteNativeControl(static (output, nonce) => NativeFrameWriter.WritePong(output, nonce), frame.Nonce);
                break;
            case NativeFrameType.Pong:
                break;
            case NativeFrameType.Invalidate when !IsServer:
                HandleInvalidated();
                break;
            case NativeFrameType.Close:
                if (frame.CloseCode == NativeCloseCodes.EventRefused)
                {
                    FailRefusedEvent(frame.Reason);
                }

                _peerClosed = true;
                lock (_gate)
                {
                    EndOutputLocked(); // answer with our own Close (after the ack we owe, written at the end of the batch)
                }

                break;
            default:
                throw new ProtocolException($"Unexpected {frame.Type} frame.");
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Delivers an event once: a sequence number at or below the stream's last is a resend already delivered.</summary>
    private void ReceiveNativeEvent(in NativeFrame frame)
    {
        var stream = _native!;
        var seq = (long)frame.Sequence;
        var args = frame.Args;
        JsonArgs.ValidateArray(args.Span, _options.MaxJsonDepth, "arguments of an Event frame");
        var e = new UhuraEvent(frame.Name, MemoryMarshalArray(args), _options.MaxJsonDepth, seq, this);
        var gate = _serverSession?.Gate ?? stream.Gate;
        var statistics = false;
        var ackSeq = seq; // noted as delivered by the dispatcher; acknowledged then if acks are on
        lock (gate)
        {
            if (HasEnded)
            {
                return; // neither delivered nor acknowledged: the sender resends it on the next link
            }

            if (seq > stream.LastReceived + 1)
            {
                throw new ProtocolException($"Event {seq} arrived after {stream.LastReceived}: a gap in the sequence.");
            }

            if (seq > stream.LastReceived)
            {
                stream.LastReceived = seq;
                if (IsStatisticsEvent(e))
                {
                    statistics = true; // answered below, outside the stream's gate
                }
                else
                {
                    Dispatch(e, null, ackSeq); // acknowledged (cumulatively) by the dispatcher once delivered
                }
            }
            else
            {
                Dispatch(null, null, ackSeq); // a resend already delivered (or queued): acknowledged after what precedes it
            }
        }

        if (statistics)
        {
            HandleStatisticsEvent(e);
            Dispatch(null, null, ackSeq);
        }
    }

    /// <summary>The frame's args were copied into an array of their own by the reader: use it as it is.</summary>
    private static byte[] MemoryMarshalArray(ReadOnlyMemory<byte> memory)
        => System.Runtime.InteropServices.MemoryMarshal.TryGetArray(memory, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : memory.ToArray();

    private T ParseJson<T>(ReadOnlyMemory<byte> json, string frame)
        where T : JToken
    {
        if (!System.Text.Unicode.Utf8.IsValid(json.Span))
        {
            // Strict, as every other JSON of every wire: a lenient decode would store U+FFFD in the session silently.
            throw new DecodeException($"The JSON of a {frame} frame is not valid UTF-8.", Convert.ToHexString(json.Span[..Math.Min(json.Length, 64)]));
        }

        try
        {
            using var reader = new JsonTextReader(new StringReader(Encoding.UTF8.GetString(json.Span)))
            {
                DateParseHandling = DateParseHandling.None,
                MaxDepth = _options.MaxJsonDepth,
            };
            return JToken.ReadFrom(reader) as T ?? throw new ProtocolException($"The JSON of a {frame} frame has the wrong shape.");
        }
        catch (JsonException ex)
        {
            throw new DecodeException($"The JSON of a {frame} frame is not valid: {ex.Message}", Encoding.UTF8.GetString(json.Span[..Math.Min(json.Length, 200)]), ex);
        }
    }
}

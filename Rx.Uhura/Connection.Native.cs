using System.Buffers;
using System.Collections.Immutable;
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
    private JObject? _setBeforeWelcome;
    private bool _prefaceRead;
    private bool _welcomed;
    private bool _heartbeats;
    private bool _peerClosed;
    private long _ackedUpTo;
    private TimeSpan _heartbeatInterval;
    private ITimer? _heartbeatTimer;
    private long _lastReadTimestamp;
    private long _lastWriteTimestamp;

    /// <summary>Event names recently read on this link (made on the first event: an idle link has none).</summary>
    private Utf8NameCache Names => _namesCache ??= new Utf8NameCache();

    /// <summary>The wire this link speaks (a server learns it from the client's first byte).</summary>
    public WireProtocol Wire => _wire ?? WireProtocol.Native;

    /// <summary>Reads the preface and whole frames from <paramref name="buffer"/>; acks once per batch.</summary>
    private async ValueTask ReadNativeAsync(ReadOnlySequence<byte> buffer, Ref<SequencePosition> consumed, Ref<SequencePosition> examined)
    {
        if (!_prefaceRead)
        {
            if (!NativePreface.TryRead(buffer.Slice(consumed.Value), out var afterPreface, out var version))
            {
                examined.Value = buffer.End;
                return;
            }

            if (version != NativePreface.Version)
            {
                throw new ProtocolException($"The peer speaks native protocol version {version}; this side speaks {NativePreface.Version}.");
            }

            consumed.Value = afterPreface;
            _prefaceRead = true;
        }

        while (!Volatile.Read(ref _closed))
        {
            NativeFrame frame;
            SequencePosition next;
            try
            {
                if (!NativeFrameReader.TryRead(buffer.Slice(consumed.Value), _options.MaxMessageSize, out frame, out next, Names))
                {
                    examined.Value = buffer.End;
                    break;
                }
            }
            catch (FrameTooLargeException tooLarge) when (PeekEventSequence(buffer.Slice(consumed.Value)) is { } seq)
            {
                await RefuseEventAsync(seq, tooLarge).ConfigureAwait(false);
                throw;
            }

            consumed.Value = next;
            examined.Value = next;
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
                await pending.ConfigureAwait(false);
            }
        }

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
        if (!_handshakeDone || !_acksEnabled || _native is not { } stream)
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
            if (_outputEnded)
            {
                return;
            }

            NativeFrameWriter.WriteClose(_pending, NativeCloseCodes.EventRefused, reason);
            _outputEnded = true;
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
        if (_refused)
        {
            return ValueTask.CompletedTask;
        }

        if (_peerClosed)
        {
            throw new ProtocolException($"A {frame.Type} frame arrived after the peer's Close.");
        }

        switch (frame.Type)
        {
            case NativeFrameType.Hello when IsServer && !_startReceived:
                _startReceived = true;
                return HandleHelloAsync(frame);
            case NativeFrameType.Welcome when !IsServer && !_welcomed:
                _welcomed = true;
                HandleWelcome(frame);
                return ValueTask.CompletedTask;
            case NativeFrameType.Hello or NativeFrameType.Welcome:
                throw new ProtocolException($"Unexpected {frame.Type} frame.");
            case NativeFrameType.Close when !IsServer && !_welcomed:
                // The server turned the client away instead of welcoming it.
                _peerClosed = true;
                Shutdown(frame.CloseCode == NativeCloseCodes.Unauthorized
                    ? new DisconnectInfo(DisconnectReason.Unauthorized, new AuthenticationFailedException(frame.Reason.Length > 0 ? frame.Reason : "Not authorized.") { ConnectionId = Id })
                    : new DisconnectInfo(DisconnectReason.RemoteClose));
                return ValueTask.CompletedTask;
        }

        if (!_handshakeDone)
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
                Session.ApplyRemote(changes);
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
            if (Volatile.Read(ref _closed))
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

    /// <summary>Client: preface, then Hello with the session, the resume position and the features asked for.</summary>
    private void SendNativeHello()
    {
        Session.AttachSink(this);
        var stream = _native!;
        _sentSessionId = Session.Id;
        var sessionId = Session.Id;
        var features = NativeFeatures.Heartbeats | (_options.EnableAcks ? NativeFeatures.Acks : 0);
        ulong lastReceived = 0;
        lock (stream.Gate)
        {
            if (sessionId is null)
            {
                // No session yet: the client names the one it wants, so that should this link drop before its Welcome
                // is read, the next Hello finds the session (and what the server sent to it) instead of a new one.
                // It asks to resume that session too: a Hello of a lost link of this client may reach the server
                // after a later one, and must continue what the later one started rather than start it over.
                sessionId = stream.ProposedSessionId ??= SessionIds.New();
                features |= NativeFeatures.Propose | NativeFeatures.Resume;
                lastReceived = (ulong)stream.ResumePoint;
            }
            else if (stream.Established)
            {
                features |= NativeFeatures.Resume;
                lastReceived = (ulong)stream.ResumePoint;
            }
        }

        var session = SessionJson(Session.Snapshot);
        lock (_gate)
        {
            _pending.Write(NativePreface.Bytes);
            NativeFrameWriter.WriteHello(_pending, NativePreface.Version, features, sessionId, lastReceived, (uint)_options.HeartbeatInterval.TotalMilliseconds, session, _authToken);
            _wroteFirst = true;
            ScheduleWriteLocked();
        }
    }

    /// <summary>Server: resume the session (and the streams, when both sides still have them) or start fresh; answer Welcome.</summary>
    private async ValueTask HandleHelloAsync(NativeFrame hello)
    {
        if (hello.Version != NativePreface.Version)
        {
            throw new ProtocolException($"Hello asks for version {hello.Version}.");
        }

        if (!await AuthenticateAsync(hello.Token).ConfigureAwait(false))
        {
            return;
        }

        var presented = ParseJson<JObject>(hello.Session, "Hello");
        CheckSessionLimits(presented);
        Session.ApplyRemote(presented);
        var proposed = (hello.Features & NativeFeatures.Propose) != 0 && SessionIds.IsWellFormed(hello.SessionId);
        var (sessionId, stored) = await ResolveSessionAsync(hello.SessionId.Length > 0 ? hello.SessionId : null, proposed).ConfigureAwait(false);
        _serverSession = await _server!.Sessions.AttachAsync(sessionId, this, followsStream: true).ConfigureAwait(false);
        var stream = _serverSession.Native;
        var granted = hello.Features & (NativeFeatures.Heartbeats | NativeFeatures.Resume | (_options.EnableAcks ? NativeFeatures.Acks : 0));

        // The streams continue only when the client resumes them and this server still has them.
        bool resumeStreams, established;
        lock (stream.Gate)
        {
            established = stream.Established;
            // A proposed id is this client's alone (random, and new to the store only while its first Hellos race):
            // its streams continue even when the keys were not stored yet.
            resumeStreams = (stored || proposed) && (granted & NativeFeatures.Resume) != 0 && stream.Established
                && (long)hello.LastReceivedSeq <= stream.LastSent;
        }

        if ((hello.Features & NativeFeatures.Resume) != 0 && (established || !proposed))
        {
            Diagnostics.UhuraMetrics.StreamResumes.Add(1, resumeStreams ? Diagnostics.UhuraMetrics.Resumed : Diagnostics.UhuraMetrics.Reset);
        }

        if (!resumeStreams)
        {
            foreach (var lost in stream.Reset())
            {
                lost.Fail(new ConnectionLostException(lost.Name) { ConnectionId = Id });
            }
        }

        stream.Established = true;
        var held = stream.TakeHeld(this); // after a fresh start: only sends made since, never written
        var heartbeat = (granted & NativeFeatures.Heartbeats) != 0
            ? TimeSpan.FromMilliseconds(Math.Clamp(hello.HeartbeatIntervalMs, 100, 3_600_000))
            : TimeSpan.Zero;
        var session = SessionJson(Session.Snapshot);
        var dropped = false;
        lock (_gate)
        {
            if (_closed)
            {
                // Dropped while it resolved and attached the session (superseded by a later Hello of the same client,
                // or its socket ended): what it took from the stream goes back for the next link, never failed here.
                dropped = true;
                foreach (var message in stream.Hold(held, _options.MaxQueuedMessages, from: this))
                {
                    message.Fail(new ConnectionLostException(message.Name) { ConnectionId = Id });
                }
            }
            else
            {
                WriteWelcomeLocked(stream, sessionId, granted, resumeStreams, hello.LastReceivedSeq, heartbeat, session, held);
            }
        }

        if (dropped)
        {
            _server.Sessions.Detach(sessionId, this); // it may have become the live one after its end was noted
            return;
        }

        StartHeartbeats(heartbeat);
        _ready.TrySetResult(true);
        _server.OnReady(this);
    }

    /// <summary>
    /// Server: from the moment this link is the session's live one (sends to the session may queue on it, even before
    /// its Welcome), whatever it has not delivered when it ends goes back to the session's stream for the next link.
    /// </summary>
    internal void FollowStream(NativeStream stream)
    {
        UndeliveredHandler = (messages, error) =>
        {
            foreach (var message in stream.Hold(messages, _options.MaxQueuedMessages, from: this))
            {
                message.Fail(new ConnectionLostException(message.Name, error) { ConnectionId = Id });
            }
        };
    }

    /// <summary>Server, under <c>_gate</c>: the link takes the stream, answers Welcome and writes the held events, then what was queued.</summary>
    private void WriteWelcomeLocked(NativeStream stream, string sessionId, NativeFeatures granted, bool resumeStreams, ulong clientReceived, TimeSpan heartbeat, byte[] session, List<OutboundMessage> held)
    {
        _native = stream;
        _objectMode = true;
        _acksEnabled = (granted & NativeFeatures.Acks) != 0;
        _ackedUpTo = resumeStreams ? (long)clientReceived : 0;
        _pending.Write(NativePreface.Bytes);
        NativeFrameWriter.WriteWelcome(_pending, NativePreface.Version, granted, sessionId, resumeStreams, resumeStreams ? (ulong)stream.ResumePoint : 0, (uint)heartbeat.TotalMilliseconds, session);
        _wroteFirst = true;
        _handshakeDone = true;
        foreach (var message in held)
        {
            if (message.Seq != 0 && message.Seq <= (long)clientReceived)
            {
                message.Succeed(); // the client had it: the resume position acknowledges it
            }
            else
            {
                WriteMessageLocked(message);
            }
        }

        while (TakePreReadyLocked(out var queued))
        {
            WriteMessageLocked(queued);
        }

        ScheduleWriteLocked();
    }

    /// <summary>Client: the server's answer. Continue the streams (resend what it has not got) or start them afresh.</summary>
    private void HandleWelcome(in NativeFrame welcome)
    {
        var stream = _native!;
        if (Volatile.Read(ref _closed))
        {
            return; // dropped meanwhile (a forced reconnect): the stream and the session belong to the next link now
        }

        Session.ApplyRemote(ParseJson<JObject>(welcome.Session, "Welcome"));
        Resumed = _sentSessionId is not null && string.Equals(_sentSessionId, Session.Id, StringComparison.Ordinal);
        List<OutboundMessage> delivered = [];
        lock (_gate)
        {
            if (_closed)
            {
                return; // shut down since: its sends were handed back as they were, the stream untouched
            }

            _objectMode = true;
            _acksEnabled = (welcome.Features & NativeFeatures.Acks) != 0;
            if (welcome.Resumed)
            {
                lock (stream.Gate)
                {
                    if ((long)welcome.LastReceivedSeq > stream.LastSent)
                    {
                        throw new ProtocolException($"Welcome says {welcome.LastReceivedSeq} were received, but only {stream.LastSent} were sent.");
                    }
                }

                _ackedUpTo = (long)welcome.LastReceivedSeq;
            }
            else
            {
                // A fresh start: both directions begin again at 1, and what was not acknowledged is sent again as new events.
                stream.Reset();
                _ackedUpTo = 0;
            }

            lock (stream.Gate)
            {
                stream.Established = true;
                stream.ProposedSessionId = null; // the Welcome named the session: later links present it
            }

            _handshakeDone = true;
            if (_setBeforeWelcome is { } changes)
            {
                _setBeforeWelcome = null;
                NativeFrameWriter.WriteSet(_pending, 0, Encoding.UTF8.GetBytes(changes.ToString(Formatting.None)));
            }

            while (TakePreReadyLocked(out var queued))
            {
                if (!welcome.Resumed)
                {
                    queued.Seq = 0;
                }
                else if (queued.Seq != 0 && queued.Seq <= _ackedUpTo)
                {
                    delivered.Add(queued); // the server had it: the resume position acknowledges it
                    continue;
                }

                WriteMessageLocked(queued);
            }

            ScheduleWriteLocked();
        }

        if (delivered.Count > 0)
        {
            MarkProgress();
        }

        foreach (var message in delivered)
        {
            message.Succeed();
        }

        var interval = TimeSpan.FromMilliseconds(welcome.HeartbeatIntervalMs);
        StartHeartbeats((welcome.Features & NativeFeatures.Heartbeats) != 0 ? interval : TimeSpan.Zero);
        _ready.TrySetResult(true);
    }

    private static byte[] SessionJson(IReadOnlyDictionary<string, JToken> session)
        => Encoding.UTF8.GetBytes(Rx.Uhura.Session.SessionJson.Write(session));

    private void WriteNativeEventLocked(OutboundMessage message)
    {
        if (message.Seq == 0)
        {
            message.Seq = ++_native!.LastSent;
        }

        var nameJson = message.Payload.AsSpan(2, message.NameEnd - 3); // the name as encoded in the payload, between its quotes
        if (nameJson.IndexOf((byte)'\\') < 0)
        {
            NativeFrameWriter.WriteEventHeader(_pending, (ulong)message.Seq, nameJson, message.NativeArgsLength);
        }
        else
        {
            NativeFrameWriter.WriteEventHeader(_pending, (ulong)message.Seq, message.Name, message.NativeArgsLength); // escaped in JSON
        }

        message.WriteNativeArgs(_pending);
        if (_acksEnabled)
        {
            _unacked.Enqueue(message);
        }
        else
        {
            _pendingWaiters.Add(message);
        }
    }

    private void WriteNativeAck(long upTo)
    {
        lock (_gate)
        {
            if (_outputEnded)
            {
                return;
            }

            NativeFrameWriter.WriteAck(_pending, (ulong)upTo);
            ScheduleWriteLocked();
        }
    }

    private void WriteNativeSet(JObject changes)
    {
        lock (_gate)
        {
            if (_outputEnded)
            {
                return;
            }

            if (!_handshakeDone)
            {
                // Hello is gone and nothing but Hello may precede Welcome: send these changes right after it.
                _setBeforeWelcome ??= new JObject();
                _setBeforeWelcome.Merge(changes);
                return;
            }

            NativeFrameWriter.WriteSet(_pending, 0, Encoding.UTF8.GetBytes(changes.ToString(Formatting.None)));
            ScheduleWriteLocked();
        }
    }

    private void WriteNativeControl(Action<IBufferWriter<byte>, ulong> write, ulong value)
    {
        lock (_gate)
        {
            if (_outputEnded)
            {
                return;
            }

            write(_pending, value);
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

        _heartbeats = true;
        _heartbeatInterval = interval;
        var time = _options.TimeProvider;
        _lastReadTimestamp = time.GetTimestamp();
        _lastWriteTimestamp = _lastReadTimestamp;
        var tick = TimeSpan.FromTicks(Math.Max(interval.Ticks / 2, 1));
        _heartbeatTimer = time.CreateTimer(static state => ((Connection)state!).HeartbeatTick(), this, tick, tick);
    }

    private void HeartbeatTick()
    {
        if (Volatile.Read(ref _closed))
        {
            return;
        }

        var time = _options.TimeProvider;
        if (!Volatile.Read(ref _deliveryBackpressured) && time.GetElapsedTime(Volatile.Read(ref _lastReadTimestamp)) >= 2 * _heartbeatInterval)
        {
            _logger.LogInformation("Connection {Id}: nothing received for {Timeout}; dropping the link", Id, 2 * _heartbeatInterval);
            Shutdown(new DisconnectInfo(DisconnectReason.TransportError, new TimeoutException($"No frame from the peer for {(2 * _heartbeatInterval).TotalMilliseconds} ms (heartbeat timeout).")));
            return;
        }

        if (time.GetElapsedTime(Volatile.Read(ref _lastWriteTimestamp)) >= _heartbeatInterval)
        {
            WriteNativeControl(static (output, nonce) => NativeFrameWriter.WritePing(output, nonce), (ulong)time.GetTimestamp());
        }
    }

    private void NoteRead()
    {
        if (_heartbeats)
        {
            Volatile.Write(ref _lastReadTimestamp, _options.TimeProvider.GetTimestamp());
        }
    }

    private void NoteWrite()
    {
        if (_heartbeats)
        {
            Volatile.Write(ref _lastWriteTimestamp, _options.TimeProvider.GetTimestamp());
        }
    }

    /// <summary>A mutable box, so an async method can hand positions back to the read loop.</summary>
    private sealed class Ref<T>(T value)
    {
        public T Value { get; set; } = value;
    }
}

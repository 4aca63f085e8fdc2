using System.Buffers;
using System.Collections.Immutable;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Protocol;
using Rx.Uhura.Protocol.Native;
using Rx.Uhura.Session;

namespace Rx.Uhura;

public sealed partial class Connection
{
    private JsonArrayFramer? _framerInstance;
    private string? _sentSessionId;
    private Server.ServerSession? _serverSession;
    private bool _invalidated;
    private bool _startReceived;

    /// <summary>The read loop waits for the dispatcher's queue to have room (the heartbeat timeout is suspended meanwhile).</summary>
    private bool _deliveryBackpressured;

    /// <summary>socket-ipc: bytes after the last whole frame already searched for its delimiter.</summary>
    private long _delimiterScanned;

    /// <summary>Server: the client was refused at the handshake; whatever else it sends is ignored until the link ends.</summary>
    private bool _refused;

    /// <summary>Server: why the link ends, once the client was refused (whichever side then closes first).</summary>
    private DisconnectInfo? _refusal;

    /// <summary>Cuts the Node wire's JSON array into elements (made once the link turns out to speak it).</summary>
    private JsonArrayFramer Framer => _framerInstance ??= new JsonArrayFramer(_options.MaxMessageSize);

    private async Task ReadLoopAsync()
    {
        var info = new DisconnectInfo(DisconnectReason.RemoteClose);
        long unconsumed = 0; // bytes left in the pipe by the last batch: what a read returns beyond them is new
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync(_readCancel.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                var consumed = buffer.Start;
                var examined = buffer.Start;
                if (buffer.Length > unconsumed)
                {
                    Diagnostics.UhuraMetrics.BytesReceived.Add(buffer.Length - unconsumed, _sideTag);
                }

                NoteRead();
                if (_wire is null && !buffer.IsEmpty)
                {
                    // One endpoint, two wires: the native preface starts with 0x00, a Node uhura stream with '[' or whitespace.
                    _wire = buffer.FirstSpan.Length > 0 && buffer.FirstSpan[0] == NativePreface.FirstByte ? WireProtocol.Native : WireProtocol.NodeUhura;
                    if (_server is { } server && !server.Accepts(_wire.Value))
                    {
                        throw new ProtocolException($"This server does not accept the {_wire} wire.");
                    }
                }

                BeginReadBatch();
                try
                {
                    if (_wire == WireProtocol.SocketIpc)
                    {
                        ReadSocketIpc(buffer, ref consumed, ref examined);
                    }
                    else if (_wire == WireProtocol.Native)
                    {
                        var c = new Ref<SequencePosition>(consumed);
                        var e = new Ref<SequencePosition>(examined);
                        try
                        {
                            await ReadNativeAsync(buffer, c, e).ConfigureAwait(false);
                        }
                        finally
                        {
                            consumed = c.Value;
                            examined = e.Value;
                        }
                    }
                    else
                    {
                        while (!Volatile.Read(ref _closed) && Framer.TryReadElement(buffer.Slice(consumed), ref consumed, ref examined, out var element))
                        {
                            var pending = HandleNodeElement(element.ToArray());
                            if (!pending.IsCompletedSuccessfully)
                            {
                                await pending.ConfigureAwait(false);
                            }
                        }
                    }
                }
                finally
                {
                    unconsumed = buffer.Slice(consumed).Length;
                    _bytesIn += buffer.Slice(buffer.Start, consumed).Length;
                    _input.AdvanceTo(consumed, examined);
                    EndReadBatch();
                }

                if (_dispatcher.IsFull)
                {
                    await WaitForDeliveryAsync().ConfigureAwait(false);
                }

                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (UhuraException ex)
        {
            info = new DisconnectInfo(DisconnectReason.ProtocolError, WithConnectionId(ex));
        }
        catch (OperationCanceledException)
        {
            info = new DisconnectInfo(DisconnectReason.LocalClose);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            info = _closing || _closed
                ? new DisconnectInfo(DisconnectReason.LocalClose)
                : new DisconnectInfo(DisconnectReason.TransportError, ex);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Connection {Id}: unexpected error in the read loop", Id);
            info = new DisconnectInfo(DisconnectReason.TransportError, ex);
        }
        finally
        {
            await _input.CompleteAsync().ConfigureAwait(false);
        }

        if (info.Reason == DisconnectReason.RemoteClose && _closing)
        {
            info = new DisconnectInfo(DisconnectReason.LocalClose);
        }

        Shutdown(info);
    }

    /// <summary>
    /// Back-pressure: the dispatcher's queue is full (the application is slower than the peer), so the read loop waits
    /// before reading on. Meanwhile the heartbeat timeout is suspended: it measures what the peer sends, and the peer's
    /// frames wait in the socket unread. It resumes, counting from now, when reading resumes.
    /// </summary>
    private async Task WaitForDeliveryAsync()
    {
        Volatile.Write(ref _deliveryBackpressured, true);
        try
        {
            await _dispatcher.WhenSpaceAsync().WaitAsync(_readCancel.Token).ConfigureAwait(false);
        }
        finally
        {
            NoteRead();
            Volatile.Write(ref _deliveryBackpressured, false);
        }
    }

    private UhuraException WithConnectionId(UhuraException ex)
    {
        ex.ConnectionId ??= Id;
        return ex;
    }

    /// <summary>
    /// Dispatches one element. Acks and application events are routed from a scan of the bytes (the arguments are parsed
    /// only if the application reads them); protocol events (<c>_set</c>, <c>start</c>, ...) are parsed whole.
    /// </summary>
    private ValueTask HandleNodeElement(byte[] element)
    {
        if (_refused)
        {
            return ValueTask.CompletedTask;
        }

        var scan = NodeElementScanner.Scan(element, _options.MaxJsonDepth, Names);
        if (scan.Name is not { Length: > 0 } name)
        {
            throw new ProtocolException("A message does not start with an event name.");
        }

        if (name.StartsWith("ack::", StringComparison.Ordinal))
        {
            ResolveAck(name.AsSpan(5));
            return ValueTask.CompletedTask;
        }

        if (!IsApplicationEvent(name))
        {
            return HandleElement(NodeWireCodec.Parse(new ReadOnlySequence<byte>(element), _options.MaxJsonDepth));
        }

        ReceiveApplicationEvent(new UhuraEvent(name, element, scan.ArrayStart, scan.ArrayLength, skip: 1, _options.MaxJsonDepth, 0, scan.MessageId, this));
        return ValueTask.CompletedTask;
    }

    /// <summary>Dispatches one parsed element: acks, protocol events, or an application event for <see cref="Events"/>.</summary>
    private ValueTask HandleElement(JToken token)
    {
        JArray array;
        string? messageId = null;
        if (token is JArray a)
        {
            array = a;
        }
        else
        {
            var obj = (JObject)token; // the framer admits only arrays and objects
            array = obj["args"] as JArray ?? throw new ProtocolException("An object message has no \"args\" array.");
            if (obj["id"] is JValue id && JsonTruthiness.IsTruthy(id))
            {
                messageId = id.Type == JTokenType.String ? (string)id! : id.ToString(Newtonsoft.Json.Formatting.None);
            }
        }

        if (array.Count == 0 || array[0].Type != JTokenType.String)
        {
            throw new ProtocolException("A message does not start with an event name.");
        }

        var name = (string)array[0]!;
        if (name.StartsWith("ack::", StringComparison.Ordinal))
        {
            ResolveAck(name.AsSpan(5));
            return ValueTask.CompletedTask;
        }

        if (messageId is not null && !IsApplicationEvent(name))
        {
            SendAck(messageId); // protocol events are acknowledged on receipt, as Node does
        }

        switch (name)
        {
            case "_set":
                HandleSet(array);
                return ValueTask.CompletedTask;
            case "start" when IsServer && !_startReceived:
                _startReceived = true;
                return HandleStartAsync(array);
            case "start":
                throw new ProtocolException(IsServer ? "A second 'start' was received." : "A server does not send 'start'.");
            case "connect" when !IsServer:
                HandleConnect(array);
                return ValueTask.CompletedTask;
            case "connect":
                _logger.LogDebug("Connection {Id}: ignoring 'connect' sent by a client", Id);
                return ValueTask.CompletedTask;
            case "invalidateSession" when !IsServer:
                HandleInvalidated();
                return ValueTask.CompletedTask;
            case "_unauthorized" when !IsServer && !_handshakeDone:
                var why = array.Count > 1 && array[1] is JObject refusal && refusal["reason"] is { Type: JTokenType.String } text ? (string)text! : "Not authorized.";
                Shutdown(new DisconnectInfo(DisconnectReason.Unauthorized, new AuthenticationFailedException(why) { ConnectionId = Id }));
                return ValueTask.CompletedTask;
            case "invalidateSession":
                throw new ProtocolException("A client cannot invalidate the session.");
        }

        if (name[0] == '_')
        {
            throw new ProtocolException($"Unknown internal event '{Truncate(name)}'.");
        }

        var args = new JToken[array.Count - 1];
        for (var i = 1; i < array.Count; i++)
        {
            args[i - 1] = array[i];
        }

        ReceiveApplicationEvent(new UhuraEvent(name, args, messageId, this));
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// socket-ipc: cuts the frames ended by two NULs, delivers each as an event named by its topic with the message as
    /// its one argument (none when the frame has no message). No acks, no dedupe: the wire has neither.
    /// </summary>
    private void ReadSocketIpc(in ReadOnlySequence<byte> buffer, ref SequencePosition consumed, ref SequencePosition examined)
    {
        if (_options.SocketIpcTranscoder is { } transcoder && transcoder is not JsonSocketIpcTranscoder)
        {
            ReadSocketIpcWith(transcoder, buffer, ref consumed, ref examined);
            return;
        }

        var rest = buffer.Slice(consumed);
        while (!Volatile.Read(ref _closed) && DelimitedFrames.TryCut(ref rest, SocketIpcCodec.Delimiter, _options.MaxMessageSize, ref _delimiterScanned, out var frame))
        {
            consumed = rest.Start;
            examined = consumed;
            var bytes = frame.ToArray();
            var scan = SocketIpcCodec.Scan(bytes, _options.MaxJsonDepth, Names);
            var e = scan.MessageStart < 0
                ? new UhuraEvent(scan.Topic, [], null, this)
                : new UhuraEvent(scan.Topic, bytes, scan.MessageStart, scan.MessageLength, skip: -1, _options.MaxJsonDepth, 0, null, this);
            if (!Volatile.Read(ref _closed))
            {
                Dispatch(e, null, 0);
            }
        }

        examined = buffer.End;
    }

    /// <summary>socket-ipc through a custom transcoder: its message JSON is validated here, as the default path's is.</summary>
    private void ReadSocketIpcWith(ISocketIpcTranscoder transcoder, in ReadOnlySequence<byte> buffer, ref SequencePosition consumed, ref SequencePosition examined)
    {
        var remaining = buffer.Slice(consumed);
        while (!Volatile.Read(ref _closed) && transcoder.TryDecode(ref remaining, _options.MaxMessageSize, out var message))
        {
            consumed = remaining.Start;
            examined = consumed;
            if (message.Topic is null)
            {
                throw new DecodeException("The socket-ipc transcoder decoded a message without a topic.");
            }

            UhuraEvent e;
            if (message.MessageJson is { } json)
            {
                var bytes = json.ToArray();
                JsonArgs.ValidateValue(bytes, _options.MaxJsonDepth, "message");
                e = new UhuraEvent(message.Topic, bytes, 0, bytes.Length, skip: -1, _options.MaxJsonDepth, 0, null, this);
            }
            else
            {
                e = new UhuraEvent(message.Topic, [], null, this);
            }

            if (!Volatile.Read(ref _closed))
            {
                Dispatch(e, null, 0);
            }
        }

        examined = buffer.End;
    }

    /// <summary>Delivers an application event once (per session, for ids this server numbered or saw) and acknowledges it after delivery.</summary>
    private void ReceiveApplicationEvent(UhuraEvent e)
    {
        var name = e.Name;
        var messageId = e.MessageId;
        if (name[0] == '_')
        {
            throw new ProtocolException($"Unknown internal event '{Truncate(name)}'.");
        }

        if (IsServer && !_startReceived)
        {
            throw new ProtocolException($"Event '{Truncate(name)}' arrived before the 'start' handshake.");
        }

        // Acknowledged once delivered (or known to be a duplicate): an ack promises the application has it. The
        // dispatcher delivers, then acknowledges, in the order the read loop queued.
        if (_serverSession is { } session && messageId is not null)
        {
            // One ordered stream per session, across its connections: a resent message already delivered is dropped.
            // Decided and queued under the session's gate, only while this connection is open (a superseded
            // connection may still be reading buffered data: it must neither deliver nor mark anything delivered).
            // What is marked here is delivered: a link's dispatcher delivers what it queued even after the link ended,
            // and the next link of the session is attached only after that (ServerSessions waits for ShutdownCompleted).
            lock (session.Gate)
            {
                if (Volatile.Read(ref _closed))
                {
                    return;
                }

                Dispatch(session.ShouldDeliver(messageId) ? e : null, messageId, 0);
            }
        }
        else if (!Volatile.Read(ref _closed))
        {
            Dispatch(e, messageId, 0);
        }
    }

    private static bool IsApplicationEvent(string name)
        => name[0] != '_' && name is not ("start" or "connect" or "invalidateSession");

    private static string Truncate(string name) => name.Length <= 64 ? name : name[..64] + "...";

    private void HandleSet(JArray array)
    {
        switch (array.Count)
        {
            case >= 3 when array[1].Type == JTokenType.String:
                CheckSessionLimits([new((string)array[1]!, array[2])]);
                Session.ApplyRemote((string)array[1]!, array[2]);
                break;
            case >= 2 when array[1] is JObject values:
                CheckSessionLimits(values);
                Session.ApplyRemote(values); // Node sends set({...}) as ["_set", {...}, null]
                break;
            case 2 when array[1].Type == JTokenType.String:
                Session.ApplyRemote((string)array[1]!, null); // set(key, undefined): the key goes away
                break;
            default:
                throw new ProtocolException("'_set' expects a key and a value, or an object of keys and values.");
        }
    }

    /// <summary>
    /// Server, both wires: the client's whole session is already in <see cref="Session"/>. If the store knows the id it
    /// presented, resume: the stored keys overlaid with the client's (its changes made while away win). Otherwise a new
    /// id, keeping the client's other keys. From then on every change is saved.
    /// </summary>
    /// <returns>The session id, and whether it was found in the store.</returns>
    private async ValueTask<(string SessionId, bool Stored)> ResolveSessionAsync(string? presentedId, bool proposed = false)
    {
        var store = _server!.SessionStore;
        IReadOnlyDictionary<string, JToken>? stored = null;
        if (presentedId is not null)
        {
            try
            {
                await _server.Sessions.WhenSavedAsync(presentedId).WaitAsync(_readCancel.Token).ConfigureAwait(false);
                stored = await store.GetAsync(presentedId, _readCancel.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                _logger.LogError(ex, "Connection {Id}: loading session {SessionId} failed; starting a new session", Id, presentedId);
            }
        }

        if (presentedId is not null && !(proposed && stored is null))
        {
            Diagnostics.UhuraMetrics.SessionResumes.Add(1, stored is not null ? Diagnostics.UhuraMetrics.Resumed : Diagnostics.UhuraMetrics.NotFound);
        }

        string sessionId;
        if (stored is not null)
        {
            sessionId = presentedId!;
            Session.Replace(ImmutableDictionary.CreateRange(StringComparer.Ordinal, stored).SetItems(Session.Snapshot), SessionChangeOrigin.Remote);
            Resumed = true;
        }
        else
        {
            sessionId = proposed ? presentedId! : SessionIds.New();
            Session.ApplyRemote(UhuraSession.IdKey, sessionId);
        }

        Session.AttachStore(store, sessionId, _logger);
        if (stored is null)
        {
            // A new session is in the store before its id leaves in the Welcome (or '_set'): a client that resumes at
            // once, even while this link is still up, finds it instead of being handed yet another fresh session.
            await Session.FlushAsync().WaitAsync(_readCancel.Token).ConfigureAwait(false);
        }

        return (sessionId, stored is not null);
    }

    /// <summary>
    /// Server: refuses a client's session change that would take its session past <see cref="ConnectionOptions.MaxSessionKeys"/>
    /// or <see cref="ConnectionOptions.MaxSessionBytes"/>, before anything is applied (the connection is then closed).
    /// </summary>
    private void CheckSessionLimits(IEnumerable<KeyValuePair<string, JToken?>> changes)
    {
        if (!IsServer)
        {
            return;
        }

        var prospective = Session.Snapshot.ToBuilder();
        foreach (var (key, value) in changes)
        {
            if (value is null || value.Type == JTokenType.Undefined)
            {
                prospective.Remove(key);
            }
            else
            {
                prospective[key] = value;
            }
        }

        if (prospective.Count > _options.MaxSessionKeys)
        {
            throw new ProtocolException($"The session would hold {prospective.Count} keys; the limit is {_options.MaxSessionKeys} (MaxSessionKeys).");
        }

        long bytes = 0;
        foreach (var (key, value) in prospective)
        {
            bytes += System.Text.Encoding.UTF8.GetByteCount(key) + System.Text.Encoding.UTF8.GetByteCount(value.ToString(Newtonsoft.Json.Formatting.None));
            if (bytes > _options.MaxSessionBytes)
            {
                throw new ProtocolException($"The session would hold more than {_options.MaxSessionBytes} bytes (MaxSessionBytes).");
            }
        }
    }

    /// <summary>
    /// Server: asks <see cref="UhuraServerOptions.Authenticate"/> about the client, before any session is looked up. A
    /// refusal is told to the client (native: a Close frame with <see cref="Protocol.Native.NativeCloseCodes.Unauthorized"/>;
    /// Node wire: an <c>_unauthorized</c> element), written out, and the link ends; false then.
    /// </summary>
    private async ValueTask<bool> AuthenticateAsync(string? token)
    {
        if (_server!.Authenticate is not { } authenticate)
        {
            return true;
        }

        AuthenticationResult result;
        try
        {
            result = await authenticate(new AuthenticationRequest(Id, _wire ?? WireProtocol.NodeUhura, token, PeerCredentials), _readCancel.Token).ConfigureAwait(false)
                ?? AuthenticationResult.Refuse("Not authorized.");
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            _logger.LogError(ex, "Connection {Id}: the authentication callback threw; the client is refused", Id);
            result = AuthenticationResult.Refuse("Authentication failed.");
        }

        if (result.IsAccepted)
        {
            return true;
        }

        var reason = result.Reason ?? "Not authorized.";
        _logger.LogInformation("Connection {Id}: refused at the handshake: {Reason}", Id, reason);
        lock (_gate)
        {
            if (_wire == WireProtocol.Native)
            {
                _pending.Write(Protocol.Native.NativePreface.Bytes);
                Protocol.Native.NativeFrameWriter.WriteClose(_pending, Protocol.Native.NativeCloseCodes.Unauthorized, reason);
                _wroteFirst = true;
                _outputEnded = true;
            }
            else
            {
                WriteSeparatorLocked();
                NodeWireCodec.WriteLegacy(_pending, NodeWireCodec.EncodePayload("_unauthorized", [new JObject { ["reason"] = reason }], _serializer));
                EndOutputLocked();
            }

            ScheduleWriteLocked();
        }

        _refusal = new DisconnectInfo(DisconnectReason.Unauthorized, new AuthenticationFailedException(reason) { ConnectionId = Id });
        _refused = true;
        _ = CloseRefusedAsync(); // the read loop writes the refusal when its batch ends
        return false;
    }

    /// <summary>Server: once the refusal is written (or <see cref="ConnectionOptions.CloseTimeout"/> passed), half-closes and ends the link.</summary>
    private async Task CloseRefusedAsync()
    {
        using (var linger = new CancellationTokenSource(_options.CloseTimeout, _options.TimeProvider))
        {
            try
            {
                await WhenDrainedAsync().WaitAsync(linger.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        await Transport.HalfClose.SendAsync(_stream).ConfigureAwait(false);
        Shutdown(_refusal!);
    }

    /// <summary>Server: the client asked to start. Resume its session if the store knows the id, else start a new one.</summary>
    private async ValueTask HandleStartAsync(JArray array)
    {
        var config = array.Count > 1 ? array[1] as JObject : null;
        var objectMode = JsonTruthiness.IsTruthy(config?["objectMode"]);
        var acks = objectMode && _options.EnableAcks && JsonTruthiness.IsTruthy(config?["enableAcks"]);
        if (!await AuthenticateAsync(config?["auth"] is { Type: JTokenType.String } auth ? (string?)auth : null).ConfigureAwait(false))
        {
            return;
        }

        var presentedId = Session.Snapshot.TryGetValue(UhuraSession.IdKey, out var idToken) && idToken.Type == JTokenType.String ? (string?)idToken : null;
        var (sessionId, stored) = await ResolveSessionAsync(presentedId).ConfigureAwait(false);

        // The session is this link's before the client learns its id: a resume that follows at once finds it attached.
        _serverSession = await _server!.Sessions.AttachAsync(sessionId, this).ConfigureAwait(false);
        if (stored)
        {
            WriteInternal(Protocol.NodeWireCodec.EncodePayload("_set", [new JObject(Session.Snapshot.Select(kv => new JProperty(kv.Key, kv.Value)))], _serializer));
        }
        else
        {
            WriteInternal(Protocol.NodeWireCodec.EncodePayload("_set", [UhuraSession.IdKey, sessionId], _serializer));
        }

        lock (_gate)
        {
            _objectMode = objectMode;
            _acksEnabled = acks;
            _handshakeDone = true;
            while (TakePreReadyLocked(out var queued))
            {
                WriteMessageLocked(queued);
            }
        }

        _ready.TrySetResult(true);

        // As in Node uhura, the application sees the connection before 'connect' goes out, so what it sends from its
        // handler precedes 'connect' on the wire.
        _server.OnReady(this);
        var config2 = new JObject { ["objectMode"] = objectMode, ["enableAcks"] = acks };
        var connect = new Internal.OutboundMessage("connect", Protocol.NodeWireCodec.EncodePayload("connect", [config2], _serializer, out var connectNameEnd), awaited: false, connectNameEnd);
        lock (_gate)
        {
            WriteMessageLocked(connect);
        }
    }

    /// <summary>Client: first element of every link is the whole session, then <c>start</c> with the features asked for.</summary>
    private void SendClientHandshake()
    {
        Session.AttachSink(this);
        var snapshot = Session.Snapshot;
        _sentSessionId = Session.Id;
        var session = new JObject(snapshot.Select(kv => new JProperty(kv.Key, kv.Value)));
        WriteInternal(NodeWireCodec.EncodePayload("_set", [session], _serializer));
        var features = new JObject { ["objectMode"] = true, ["enableAcks"] = _options.EnableAcks };
        if (_authToken is not null)
        {
            features["auth"] = _authToken; // a Node server ignores options it does not know
        }

        WriteInternal(NodeWireCodec.EncodePayload("start", [features], _serializer));
    }

    /// <summary>Client: the server accepted; switch to the granted form and send what was queued.</summary>
    private void HandleConnect(JArray array)
    {
        var config = array.Count > 1 ? array[1] as JObject : null;
        lock (_gate)
        {
            if (_handshakeDone || _closed)
            {
                return;
            }

            _objectMode = JsonTruthiness.IsTruthy(config?["objectMode"]);
            _acksEnabled = _objectMode && JsonTruthiness.IsTruthy(config?["enableAcks"]);
            Resumed = _sentSessionId is not null && string.Equals(_sentSessionId, Session.Id, StringComparison.Ordinal);
            _handshakeDone = true;
            while (TakePreReadyLocked(out var queued))
            {
                WriteMessageLocked(queued);
            }
        }

        _ready.TrySetResult(true);
    }

    /// <summary>Client: the server destroyed the session. Forget it and drop the socket, as Node uhura does.</summary>
    private void HandleInvalidated()
    {
        Session.Replace(ImmutableDictionary<string, JToken>.Empty, SessionChangeOrigin.Remote);
        lock (_gate)
        {
            _outputEnded = true;
        }

        Shutdown(new DisconnectInfo(DisconnectReason.SessionInvalidated));
    }

    /// <summary>
    /// Server: destroys this connection's session in the store and tells the client, which forgets it and drops the
    /// socket (a reconnecting client then starts a fresh session). Completes when the notice was written.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called on a client's link.</exception>
    public async Task InvalidateSession()
    {
        if (!IsServer)
        {
            throw new InvalidOperationException("Only a server can invalidate a session.");
        }

        var sessionId = Session.Id;
        _invalidated = true;
        if (sessionId is not null)
        {
            _server!.Sessions.Remove(sessionId);
        }

        _serverSession = null;
        await Session.DetachStoreAsync().ConfigureAwait(false);
        if (sessionId is not null)
        {
            await _server!.SessionStore.DestroyAsync(sessionId).ConfigureAwait(false);
        }

        var notice = new Internal.OutboundMessage("invalidateSession", NodeWireCodec.EncodePayload("invalidateSession", [], _serializer, out var noticeNameEnd), awaited: false, noticeNameEnd);
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            if (_wire == WireProtocol.Native)
            {
                NativeFrameWriter.WriteInvalidate(_pending, 0);
                ScheduleWriteLocked();
            }
            else
            {
                WriteMessageLocked(notice);
            }
        }

        await WhenDrainedAsync().ConfigureAwait(false);
    }
}

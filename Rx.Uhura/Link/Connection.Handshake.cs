using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Protocol;
using Rx.Uhura.Protocol.Native;
using Rx.Uhura.Session;

namespace Rx.Uhura;

public sealed partial class Connection
{
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
            result = await authenticate(new AuthenticationRequest(Id, _handler?.Protocol ?? WireProtocol.NodeUhura, token, PeerCredentials), _readCancel.Token).ConfigureAwait(false)
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
        Refuse(Protocol.Native.NativeCloseCodes.Unauthorized, reason, new DisconnectInfo(DisconnectReason.Unauthorized, new AuthenticationFailedException(reason) { ConnectionId = Id }));
        return false;
    }

    /// <summary>
    /// Server: turns the client away at the handshake (native: the preface and a Close frame with <paramref name="nativeCode"/>
    /// instead of Welcome; Node wire: an <c>_unauthorized</c> element), writes it out, and ends the link with <paramref name="end"/>.
    /// </summary>
    private void Refuse(ushort nativeCode, string reason, DisconnectInfo end)
    {
        _logger.LogInformation("Connection {Id}: refused at the handshake: {Reason}", Id, reason);
        lock (_gate)
        {
            Handler.WriteRefusalLocked(nativeCode, reason);
            ScheduleWriteLocked();
        }

        _refusal = end;
        _handshake = HandshakeProgress.Refused;
        _ = CloseRefusedAsync(); // the read loop writes the refusal when its batch ends
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
            _handshake = HandshakeProgress.Done;
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
            if (HandshakeDone || HasEnded)
            {
                return;
            }

            _objectMode = JsonTruthiness.IsTruthy(config?["objectMode"]);
            _acksEnabled = _objectMode && JsonTruthiness.IsTruthy(config?["enableAcks"]);
            Resumed = _sentSessionId is not null && string.Equals(_sentSessionId, Session.Id, StringComparison.Ordinal);
            _handshake = HandshakeProgress.Done;
            _setDuringHandshake = null; // from now on the server's changes apply (see Connection.NodeSession.cs)
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
            Reach(LinkProgress.OutputEnded);
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

        lock (_gate)
        {
            if (HasEnded)
            {
                return;
            }

            Handler.WriteInvalidationLocked();
        }

        await WhenDrainedAsync().ConfigureAwait(false);
    }
}

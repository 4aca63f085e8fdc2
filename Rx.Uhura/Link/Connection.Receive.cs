using System.Buffers;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;
using Rx.Uhura.Protocol.Native;
using Rx.Uhura.Session;

namespace Rx.Uhura;

public sealed partial class Connection
{
    private string? _sentSessionId;
    private Server.ServerSession? _serverSession;
    private bool _invalidated;

    /// <summary>The read loop waits for the dispatcher's queue to have room (the heartbeat timeout is suspended meanwhile).</summary>
    private bool _deliveryBackpressured;

    /// <summary>True while the read loop waits for the dispatcher's queue to have room (tests: a state to reach before moving a virtual clock).</summary>
    internal bool IsDeliveryBackpressured => Volatile.Read(ref _deliveryBackpressured);

    /// <summary>Server: why the link ends, once the client was refused (whichever side then closes first).</summary>
    private DisconnectInfo? _refusal;

    private async Task ReadLoopAsync()
    {
        var end = await LinkReader.RunAsync(_input, this, _sideTag, _readCancel.Token).ConfigureAwait(false);
        await _input.CompleteAsync().ConfigureAwait(false);
        var info = end.Kind switch
        {
            ReadEndKind.Protocol => new DisconnectInfo(DisconnectReason.ProtocolError, WithConnectionId((UhuraException)end.Error!)),
            ReadEndKind.Canceled => new DisconnectInfo(DisconnectReason.LocalClose),
            ReadEndKind.Transport when _closing || HasEnded => new DisconnectInfo(DisconnectReason.LocalClose),
            ReadEndKind.Transport or ReadEndKind.Unexpected => new DisconnectInfo(DisconnectReason.TransportError, end.Error),
            _ => new DisconnectInfo(_closing ? DisconnectReason.LocalClose : DisconnectReason.RemoteClose),
        };
        if (end.Kind == ReadEndKind.Unexpected)
        {
            _logger.LogError(end.Error, "Connection {Id}: unexpected error in the read loop", Id);
        }

        Shutdown(info);
    }

    Liveness? ILinkReadHandler.Liveness => _liveness;

    bool ILinkReadHandler.DeliveriesFull => _dispatcher.IsFull;

    /// <summary>Handles one read's bytes on the link's wire (learnt from the first byte on a server).</summary>
    async ValueTask<ReadProgress> ILinkReadHandler.HandleAsync(ReadOnlySequence<byte> buffer, bool isCompleted)
    {
        if (_handler is null && !buffer.IsEmpty)
        {
            // One endpoint, two wires: the native preface starts with 0x00, a Node uhura stream with '[' or whitespace.
            var wire = buffer.FirstSpan.Length > 0 && buffer.FirstSpan[0] == NativePreface.FirstByte ? WireProtocol.Native : WireProtocol.NodeUhura;
            _handler = WireHandler.For(this, wire); // also for a refused wire: what ends its output is that wire's
            if (_server is { } server && !server.Accepts(wire))
            {
                throw new ProtocolException($"This server does not accept the {wire} wire.");
            }
        }

        var progress = new ReadProgress(buffer.Start, buffer.Start);
        BeginReadBatch();
        try
        {
            if (_handler is { } handler)
            {
                progress = await handler.ReadAsync(buffer).ConfigureAwait(false);
            }
        }
        finally
        {
            _bytesIn += buffer.Slice(buffer.Start, progress.Consumed).Length;
            EndReadBatch();
        }

        return progress;
    }

    /// <summary>
    /// Back-pressure: the dispatcher's queue is full (the application is slower than the peer), so the read loop waits
    /// before reading on (the loop suspends the heartbeat timeout meanwhile: it measures what the peer sends, and the
    /// peer's frames wait in the socket unread).
    /// </summary>
    async Task<bool> ILinkReadHandler.WhenRoomAsync(CancellationToken cancel)
    {
        Volatile.Write(ref _deliveryBackpressured, true);
        _liveness?.Suspend(); // heartbeats may have started since the loop suspended them (StartHeartbeats reads the flag)
        try
        {
            await _dispatcher.WhenSpaceAsync().WaitAsync(cancel).ConfigureAwait(false);
            return true;
        }
        finally
        {
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
        if (_handshake == HandshakeProgress.Refused)
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
            case "start" when IsServer && !Greeted:
                _handshake = HandshakeProgress.Greeted;
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
            case "_unauthorized" when !IsServer && !HandshakeDone:
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

    /// <summary>Delivers an application event once (per session, for ids this server numbered or saw) and acknowledges it after delivery.</summary>
    private void ReceiveApplicationEvent(UhuraEvent e)
    {
        var name = e.Name;
        var messageId = e.MessageId;
        if (name[0] == '_')
        {
            throw new ProtocolException($"Unknown internal event '{Truncate(name)}'.");
        }

        if (IsServer && !Greeted)
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
                if (HasEnded)
                {
                    return;
                }

                Dispatch(session.ShouldDeliver(messageId) ? e : null, messageId, 0);
            }
        }
        else if (!HasEnded)
        {
            Dispatch(e, messageId, 0);
        }
    }

    private static bool IsApplicationEvent(string name)
        => name[0] != '_' && name is not ("start" or "connect" or "invalidateSession");

    private static string Truncate(string name) => name.Length <= 64 ? name : name[..64] + "...";

    private void HandleSet(JArray array)
    {
        if (IsServer && array.Count >= 2 && array[1].Type == JTokenType.String && (string)array[1]! == UhuraSession.IdKey
            && IsForeignSessionId(array.Count >= 3 ? array[2] : null))
        {
            return; // a client cannot rename its session
        }

        switch (array.Count)
        {
            case >= 3 when array[1].Type == JTokenType.String:
                CheckSessionLimits([new((string)array[1]!, array[2])]);
                Session.ApplyRemote((string)array[1]!, array[2], NotSetDuringHandshake);
                break;
            case >= 2 when array[1] is JObject values:
                values = IsServer ? WithoutForeignSessionId(values) : values;
                CheckSessionLimits(values);
                Session.ApplyRemote(values, WithoutSetsDuringHandshake); // Node sends set({...}) as ["_set", {...}, null]
                break;
            case 2 when array[1].Type == JTokenType.String:
                Session.ApplyRemote((string)array[1]!, null, NotSetDuringHandshake); // set(key, undefined): the key goes away
                break;
            default:
                throw new ProtocolException("'_set' expects a key and a value, or an object of keys and values.");
        }
    }
}

using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Reactive.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Mesh.Internal;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Mesh;

/// <summary>
/// A peer of a mesh: it listens, connects to other nodes, and talks to each by node id, with one connection per pair of
/// nodes however they dialled each other (masterless), plus an event bus that carries <see cref="Emit(string, ReadOnlySpan{object?})"/>
/// to every node of the graph exactly once, whatever its shape (verbose). Everything it observes is an Rx stream:
/// <see cref="Messages"/>, <see cref="Events"/>, <see cref="PeerConnected"/>, <see cref="PeerDisconnected"/>,
/// <see cref="NodeEvents"/>. <see cref="CloseAsync"/> (or disposal) ends every link and completes them.
/// </summary>
/// <remarks>
/// A kept peer (<see cref="Keep"/>; <see cref="ConnectAsync"/> keeps by default) is reconnected after a lost link with
/// <see cref="UhuraNodeOptions.Reconnect"/>'s backoff; packets and bus events sent meanwhile wait, bounded, and go out
/// when it is back. Every timer runs on <see cref="UhuraNodeOptions.TimeProvider"/>.
/// </remarks>
public sealed partial class UhuraNode : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, MeshPeer> _peers = new(StringComparer.Ordinal);
    private readonly HashSet<MeshLink> _links = [];
    private readonly Dictionary<string, bool> _keepBeforeConnect = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ulong> _lostLinks = new(StringComparer.Ordinal);
    private readonly ISubject<NodeEvent> _nodeEvents = Subject.Synchronize(new Subject<NodeEvent>());
    private readonly ISubject<MeshMessage> _messages = Subject.Synchronize(new Subject<MeshMessage>());
    private readonly ISubject<BusEvent> _busEvents = Subject.Synchronize(new Subject<BusEvent>());
    private readonly BehaviorSubject<string?> _listening = new(null);
    private readonly BehaviorSubject<int> _openLinks = new(0);
    private readonly JsonSerializer _serializer;
    private readonly ILogger _logger;
    private readonly string _incarnation = Guid.NewGuid().ToString("N");
    private readonly ITimer _heartbeatTimer;
    private readonly ITimer _busTimer;
    private readonly CancellationTokenSource _closing = new();
    private ITransportListener? _listener;
    private Task _acceptLoop = Task.CompletedTask;
    private Task? _closeTask;
    private string? _info;
    private ulong _nextLinkId;
    private bool _closed;

    /// <summary>Creates a node; it does nothing until it listens or connects.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public UhuraNode(UhuraNodeOptions? options = null)
    {
        Options = options ?? UhuraNodeOptions.Default;
        Options.Validate();
        Id = Options.NodeId ?? Guid.NewGuid().ToString("N");
        Time = Options.TimeProvider;
        _serializer = Options.CreateSerializer();
        _logger = Options.LoggerFactory.CreateLogger<UhuraNode>();
        var tick = Options.HeartbeatInterval / 2;
        _heartbeatTimer = Time.CreateTimer(static s => ((UhuraNode)s!).OnHeartbeatTick(), this, tick, tick);
        _busTimer = Time.CreateTimer(static s => ((UhuraNode)s!).OnBusTick(), this, Options.AcknowledgeInterval, Options.AcknowledgeInterval);
    }

    /// <summary>The node's id.</summary>
    public string Id { get; }

    /// <summary>The wire the node speaks.</summary>
    public MeshProtocol Protocol => Options.Protocol;

    /// <summary>The node's address, the endpoint URI it listens on with the real port (<c>tcp://127.0.0.1:41234</c>); null before it listens.</summary>
    public string? Info => Volatile.Read(ref _info);

    /// <summary>The node's address once it listens: replays it to late subscribers, then completes when the node closes.</summary>
    public IObservable<string> Listening => _listening.Where(static info => info is not null).Select(static info => info!);

    /// <summary>
    /// Packets peers sent to this node (masterless's <c>message(sender, packet)</c>). Hot; completes when the node closes.
    /// A subscriber that throws is logged; the other subscribers still get the packet.
    /// </summary>
    public IObservable<MeshMessage> Messages => new Rx.Uhura.Internal.GuardedObservable<MeshMessage>(_messages, "UhuraNode.Messages", null, LogSubscriberError);

    /// <summary>
    /// Events other nodes emitted on the bus, each exactly once. Hot; completes when the node closes. A subscriber that
    /// throws is logged; the other subscribers still get the event.
    /// </summary>
    public IObservable<BusEvent> Events => new Rx.Uhura.Internal.GuardedObservable<BusEvent>(_busEvents, "UhuraNode.Events", null, LogSubscriberError);

    /// <summary>
    /// Everything that happens to the node and its links (verbose's stream events and more). Hot; completes when the node
    /// closes. A subscriber that throws is logged; the other subscribers still get the event.
    /// </summary>
    public IObservable<NodeEvent> NodeEvents => new Rx.Uhura.Internal.GuardedObservable<NodeEvent>(_nodeEvents, "UhuraNode.NodeEvents", null, LogSubscriberError);

    private void LogSubscriberError(SubscriberException error) => _logger.LogError(error.InnerException, "Node {NodeId}: a subscriber of {Stream} threw", Id, error.StreamName);

    /// <summary>A peer's id each time a link to it becomes ready (masterless's <c>connect</c>), including reconnections.</summary>
    public IObservable<string> PeerConnected => NodeEvents.Where(static e => e.Kind == NodeEventKind.Initialized).Select(static e => e.PeerId!);

    /// <summary>A peer's id when the node forgets it: not connected, not kept, not being reconnected (masterless's <c>disconnect</c>).</summary>
    public IObservable<string> PeerDisconnected => NodeEvents.Where(static e => e.Kind == NodeEventKind.PeerGone).Select(static e => e.PeerId!);

    /// <summary>The ids of the peers connected now.</summary>
    public IReadOnlyList<string> Peers
    {
        get
        {
            lock (_gate)
            {
                return [.. _peers.Values.Where(static p => p.Link is { Phase: LinkPhase.Stable }).Select(static p => p.Id)];
            }
        }
    }

    /// <summary>The number of sockets open, handshaking or not, now and on every change (for tests of de-duplication).</summary>
    internal IObservable<int> OpenLinks => _openLinks.AsObservable();

    internal string DebugLinks()
    {
        lock (_gate)
        {
            return string.Join(", ", _links.Select(static l => l.ToString() + (l.IsClosing ? " closing" : string.Empty)));
        }
    }

    internal UhuraNodeOptions Options { get; }

    internal TimeProvider Time { get; }

    /// <summary>Bus events of <paramref name="eventName"/> only.</summary>
    public IObservable<BusEvent> Event(string eventName)
    {
        ArgumentNullException.ThrowIfNull(eventName);
        return Events.Where(e => string.Equals(e.Name, eventName, StringComparison.Ordinal));
    }

    /// <summary>
    /// Listens on <paramref name="endpointUri"/> (<c>tcp://HOST:PORT</c>, port 0 for a free one; <c>tls://HOST:PORT</c>
    /// with <see cref="UhuraNodeOptions.Tls"/>; or <c>unix:///PATH</c>) and returns <see cref="Info"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The node already listens, or is closed.</exception>
    /// <exception cref="ArgumentException">A <c>tls://</c> endpoint without <see cref="UhuraNodeOptions.Tls"/> or a server certificate.</exception>
    public async Task<string> ListenAsync(string endpointUri, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpointUri);
        var endPoint = UhuraEndpoint.Parse(endpointUri);
        TransportFor(endPoint); // a tls:// endpoint without TLS options throws here
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            if (_listener is not null || _info is not null)
            {
                throw new InvalidOperationException("The node already listens.");
            }

            _info = string.Empty; // reserved while binding
        }

        ITransportListener listener;
        try
        {
            listener = await TransportFor(endPoint).BindAsync(endPoint, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            lock (_gate)
            {
                _info = null;
            }

            throw;
        }

        var info = UhuraEndpoint.Format(listener.EndPoint);
        lock (_gate)
        {
            if (_closed)
            {
                _ = listener.DisposeAsync();
                throw new ObjectDisposedException(nameof(UhuraNode));
            }

            _listener = listener;
            _info = info;
            _acceptLoop = AcceptLoopAsync(listener);
        }

        _logger.LogInformation("Node {NodeId} listens on {Info}", Id, info);
        _listening.OnNext(info);
        Raise(new NodeEvent(NodeEventKind.Listening) { Info = info });
        return info;
    }

    /// <summary>
    /// Connects to the node at <paramref name="uri"/> and returns its id once the two can talk. When the two nodes are
    /// already connected, or dial each other at the same moment, one connection survives and this returns as well.
    /// </summary>
    /// <param name="uri">The other node's <see cref="Info"/>.</param>
    /// <param name="keep">Whether to keep the peer: reconnect it with backoff when the link drops. Default true (masterless's README; its code does not).</param>
    /// <param name="cancellationToken">Cancels the attempt.</param>
    /// <exception cref="PeerRefusedException">The handshake refused the connection (other channel, itself, full, timeout).</exception>
    /// <exception cref="IOException">The socket could not be opened or was lost during the handshake.</exception>
    /// <exception cref="TlsException">A <c>tls://</c> peer's certificate was refused, or the TLS handshake failed.</exception>
    /// <exception cref="ArgumentException">A <c>tls://</c> URI without <see cref="UhuraNodeOptions.Tls"/>.</exception>
    public async Task<string> ConnectAsync(string uri, bool keep = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(uri);
        TransportFor(UhuraEndpoint.Parse(uri)); // a bad URI, or tls:// without TLS options, throws here, before anything else
        if (Protocol == MeshProtocol.Masterless && Info is not { Length: > 0 })
        {
            throw new InvalidOperationException("A masterless node announces its address in the handshake: call ListenAsync before ConnectAsync.");
        }

        for (var attempt = 1; ; attempt++)
        {
            if (ConnectedAt(uri) is { } known)
            {
                // Already connected to the node at that address (it dialled us, or an earlier call did).
                if (keep)
                {
                    Keep(known, true);
                }

                return known;
            }

            var link = await DialAsync(uri, expectedId: null, keep, cancellationToken).ConfigureAwait(false);
            try
            {
                return await link.Handshake.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (DialedNodeId(link) is { } id && (ex is PeerRefusedException { Reason: PeerRefusal.Duplicate } || HasOtherLink(link, id)))
            {
                // De-duplication kept another connection between the two nodes: the peer is (or is about to be) connected.
                await WhenConnectedAsync(id, cancellationToken).ConfigureAwait(false);
                if (keep)
                {
                    Keep(id, true);
                }

                return id;
            }
            catch (PeerLostException) when (DialedNodeId(link) is null && attempt < 3 && !cancellationToken.IsCancellationRequested)
            {
                // A masterless node closes a second connection from a node it is already connecting to before saying
                // who it is: the other connection is on its way. Look again shortly.
                await Task.Delay(Options.Reconnect.FirstDelay, Time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                link.Abort(null);
                throw;
            }
        }
    }

    /// <summary>The id of a connected peer whose address is <paramref name="uri"/>, if any.</summary>
    private string? ConnectedAt(string uri)
    {
        lock (_gate)
        {
            return _peers.Values.FirstOrDefault(p => p.Link is { Phase: LinkPhase.Stable } && string.Equals(p.Address, uri, StringComparison.OrdinalIgnoreCase))?.Id;
        }
    }

    /// <summary>
    /// Sends a packet to one peer; false when no peer has that id. The packet (a JSON object: a <see cref="JObject"/>
    /// or any object that serializes to one) waits when the peer is handshaking or being reconnected.
    /// </summary>
    /// <exception cref="ArgumentException">The packet is not a JSON object (masterless's <c>TypeError</c>).</exception>
    public bool Send(string id, object packet)
    {
        ArgumentNullException.ThrowIfNull(id);
        var frame = EncodePacket(packet);
        lock (_gate)
        {
            return SendLocked(id, frame);
        }
    }

    /// <summary>
    /// Sends one packet to several peers (multi-dispatch): it is encoded once and the same bytes are written to each.
    /// Returns how many of the ids are peers (a repeated id is sent twice, as masterless does).
    /// </summary>
    /// <exception cref="ArgumentException">The packet is not a JSON object.</exception>
    public int Send(IEnumerable<string> ids, object packet)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var frame = EncodePacket(packet);
        var reached = 0;
        lock (_gate)
        {
            foreach (var id in ids)
            {
                if (id is not null && SendLocked(id, frame))
                {
                    reached++;
                }
            }
        }

        return reached;
    }

    /// <summary>
    /// Whether to keep the peer <paramref name="id"/>: a kept peer is reconnected with backoff when its link drops. The
    /// flag is told to the peer; a link that neither side keeps is closed. Before the peer is known the flag is
    /// remembered for when it connects.
    /// </summary>
    public void Keep(string id, bool keep = true)
    {
        ArgumentNullException.ThrowIfNull(id);
        NodeEvent[]? raised = null;
        lock (_gate)
        {
            if (!_peers.TryGetValue(id, out var peer))
            {
                _keepBeforeConnect[id] = keep;
                return;
            }

            peer.KeepLocal = keep;
            if (peer.Link is { Phase: LinkPhase.Stable } link)
            {
                link.Enqueue(KeepFrame(keep));
                if (!keep && !peer.KeepRemote)
                {
                    raised = ForgetLocked(peer, null);
                }
            }
            else if (!keep && peer.Link is null)
            {
                raised = ForgetLocked(peer, null);
            }
        }

        Raise(raised);
    }

    /// <summary>Disconnects from the peer <paramref name="id"/> and forgets it (no reconnection); false when no peer has that id.</summary>
    public bool Disconnect(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        NodeEvent[] raised;
        lock (_gate)
        {
            _keepBeforeConnect.Remove(id);
            if (!_peers.TryGetValue(id, out var peer))
            {
                return false;
            }

            raised = ForgetLocked(peer, null);
        }

        Raise(raised);
        return true;
    }

    /// <summary>
    /// A task that completes when the peer <paramref name="id"/> is connected (at once if it is), or fails with a
    /// <see cref="TimeoutException"/> after <see cref="UhuraNodeOptions.HandshakeTimeout"/>.
    /// </summary>
    public async Task WhenConnectedAsync(string id, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(id);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var connected = PeerConnected.Where(p => p == id).FirstAsync().ToTask(stop.Token); // subscribed before the check: no gap
        try
        {
            lock (_gate)
            {
                if (_peers.TryGetValue(id, out var peer) && peer.Link is { Phase: LinkPhase.Stable } && (Protocol == MeshProtocol.Masterless || peer.Link.BusInitialized))
                {
                    return;
                }
            }

            await connected.WaitAsync(Options.HandshakeTimeout, Time, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            stop.Cancel(); // ends the subscription
        }
    }

    /// <summary>Ends every link, stops listening and reconnecting, and completes the node's streams. Idempotent.</summary>
    public Task CloseAsync()
    {
        lock (_gate)
        {
            return _closeTask ??= CloseCoreAsync();
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync() => await CloseAsync().ConfigureAwait(false);

    private async Task CloseCoreAsync()
    {
        MeshLink[] links;
        ITransportListener? listener;
        lock (_gate)
        {
            _closed = true;
            links = [.. _links];
            listener = _listener;
            foreach (var peer in _peers.Values)
            {
                if (peer.Reconnecting is { } reconnecting)
                {
                    MeshLink.CancelSoon(reconnecting);
                }
            }
        }

        _closing.Cancel();
        _heartbeatTimer.Dispose();
        _busTimer.Dispose();
        if (listener is not null)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }

        await _acceptLoop.ConfigureAwait(false);
        foreach (var link in links)
        {
            link.CloseAfter(Protocol == MeshProtocol.Native ? NativeMeshCodec.Frame(MeshFrameType.Close, "node closed"u8) : null, null);
        }

        var closed = Task.WhenAll(links.Select(static l => l.Closed));
        if (await Task.WhenAny(closed, Task.Delay(Options.HandshakeTimeout, Time)).ConfigureAwait(false) != closed)
        {
            foreach (var link in links)
            {
                link.Abort(null); // the peer did not close its side in time
            }
        }

        await closed.ConfigureAwait(false);
        _logger.LogInformation("Node {NodeId} closed", Id);
        _nodeEvents.OnCompleted();
        _messages.OnCompleted();
        _busEvents.OnCompleted();
        _listening.OnCompleted();
        _openLinks.OnCompleted();
        _closing.Dispose();
    }

    private async Task AcceptLoopAsync(ITransportListener listener)
    {
        await Task.Yield();
        while (true)
        {
            Stream? stream;
            try
            {
                stream = await listener.AcceptAsync(_closing.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException)
            {
                _logger.LogWarning(ex, "Node {NodeId}: accept failed", Id);
                continue;
            }

            if (stream is null)
            {
                return;
            }

            var link = new MeshLink(this, stream, outgoing: false, dialedUri: null, expectedId: null);
            lock (_gate)
            {
                if (_closed)
                {
                    stream.Dispose();
                    return;
                }

                _links.Add(link);
                _openLinks.OnNext(_links.Count);
            }

            Raise(new NodeEvent(NodeEventKind.Connect));
            link.Start();
        }
    }

    /// <summary>The transport for an endpoint: TLS over <see cref="UhuraNodeOptions.Transport"/> for <c>tls://</c>.</summary>
    private ITransport TransportFor(System.Net.EndPoint endPoint) => TlsTransport.For(endPoint, Options.Transport, Options.Tls, nameof(UhuraNodeOptions), Time);

    /// <summary>Opens a socket to <paramref name="uri"/> and starts an outgoing handshake on it.</summary>
    private async Task<MeshLink> DialAsync(string uri, string? expectedId, bool keep, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        var endPoint = UhuraEndpoint.Parse(uri);
        using var timeout = new CancellationTokenSource(Options.HandshakeTimeout, Time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token, _closing.Token);
        Stream stream;
        try
        {
            stream = await TransportFor(endPoint).ConnectAsync(endPoint, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new PeerRefusedException(PeerRefusal.Timeout, $"Connecting to {uri} took longer than {Options.HandshakeTimeout.TotalSeconds:0.###} s.", expectedId);
        }

        var link = new MeshLink(this, stream, outgoing: true, uri, expectedId) { KeepIntent = keep };
        lock (_gate)
        {
            if (_closed)
            {
                stream.Dispose();
                throw new ObjectDisposedException(nameof(UhuraNode));
            }

            _links.Add(link);
            _openLinks.OnNext(_links.Count);
        }

        Raise(new NodeEvent(NodeEventKind.Connect) { PeerId = expectedId });
        link.Start();
        link.Enqueue(Protocol == MeshProtocol.Native
            ? NativeMeshCodec.Frame(MeshFrameType.Hello, new JObject { ["v"] = 1, ["id"] = Id, ["info"] = Info is { Length: > 0 } info ? info : null, ["channel"] = Options.Channel, ["inc"] = _incarnation })
            : MasterlessCodec.Encode(new JObject { ["id"] = Id, ["info"] = Info, [UhuraMark] = 1 }));
        return link;
    }

    private bool HasOtherLink(MeshLink link, string id)
    {
        lock (_gate)
        {
            return _links.Any(l => l != link && l.RemoteId == id && !l.IsClosing);
        }
    }

    private byte[] EncodePacket(object packet)
    {
        ArgumentNullException.ThrowIfNull(packet);
        var token = packet as JToken ?? JToken.FromObject(packet, _serializer);
        if (token is not JObject)
        {
            throw new ArgumentException($"A packet must be a JSON object, not {token.Type}.", nameof(packet));
        }

        return Protocol == MeshProtocol.Native
            ? NativeMeshCodec.Frame(MeshFrameType.Packet, token)
            : MasterlessCodec.Encode(token);
    }

    private bool SendLocked(string id, byte[] frame)
    {
        if (!_peers.TryGetValue(id, out var peer))
        {
            return false;
        }

        if (peer.Link is { Phase: LinkPhase.Stable } link && link.Enqueue(frame))
        {
            return true;
        }

        if (peer.Pending.Count >= Options.MaxQueuedPackets)
        {
            return false;
        }

        peer.Pending.Enqueue(new OutFrame(null, frame));
        return true;
    }

    private byte[] KeepFrame(bool keep) => Protocol == MeshProtocol.Native
        ? NativeMeshCodec.Frame(MeshFrameType.Keep, [keep ? (byte)1 : (byte)0])
        : keep ? "[true]\r\n"u8.ToArray() : "[false]\r\n"u8.ToArray();

    /// <summary>
    /// Makes <paramref name="link"/> THE link to its peer: replaces an older one, flushes queued packets, tells the keep
    /// flag and (native) starts the bus sync. Caller holds the lock.
    /// </summary>
    private List<NodeEvent> EstablishLocked(MeshLink link, List<NodeEvent> raised)
    {
        var id = link.RemoteId!;
        if (!_peers.TryGetValue(id, out var peer))
        {
            peer = new MeshPeer(id);
            _peers[id] = peer;
        }

        if (peer.Link is { } old && old != link)
        {
            if (Protocol == MeshProtocol.Masterless && link.RemoteIsUhura && old.RemoteIsUhura && old.Phase == LinkPhase.Stable && !old.IsClosing
                && DialerOf(link).CompareTo(DialerOf(old), StringComparison.Ordinal) > 0)
            {
                // Masterless's priorities can confirm both of two simultaneous connections (its own race). Two Rx.Uhura
                // ends then keep the connection dialled by the node with the smaller id, and close the other. With a
                // Node peer the later one replaces the earlier, as the Node package does.
                link.Superseded = true;
                link.Handshake.TrySetResult(id);
                link.CloseAfter(null, null);
                return raised;
            }

            old.Superseded = true;
            old.Abort(null);
        }

        _lostLinks.Remove(id);
        peer.Link = link;
        link.Phase = LinkPhase.Stable;
        var address = link.Outgoing ? link.DialedUri : link.RemoteInfo;
        if (address is not null)
        {
            peer.Address = address;
        }

        if (_keepBeforeConnect.Remove(id, out var keepFlag))
        {
            peer.KeepLocal = keepFlag;
        }

        peer.KeepLocal |= link.KeepIntent;
        peer.KeepRemote = true;
        var isReconnect = peer.EverConnected;
        peer.EverConnected = true;
        link.IsReconnect = isReconnect;
        if (Protocol == MeshProtocol.Native)
        {
            if (peer.RemoteIncarnation != link.RemoteIncarnation)
            {
                // A new process behind that id: its sequence numbers start again.
                peer.RemoteIncarnation = link.RemoteIncarnation;
                peer.Bus.LastReceived = 0;
                peer.Bus.LastAckSent = 0;
            }

            // Keep and Sync first, so the peer knows the link is ready before any packet arrives on it.
            link.Enqueue(KeepFrame(peer.KeepLocal));
            link.Enqueue(NativeMeshCodec.Number(MeshFrameType.Sync, peer.Bus.LastReceived, isReconnect));
            FlushPending(peer, link);
        }
        else
        {
            FlushPending(peer, link); // masterless: queued packets, then connect, then the keep flag
            raised.Add(new NodeEvent(NodeEventKind.Initialized) { PeerId = id, Info = peer.Address, IsReconnect = isReconnect });
            if (isReconnect)
            {
                raised.Add(new NodeEvent(NodeEventKind.Reconnect) { PeerId = id, Info = peer.Address });
            }

            link.Enqueue(KeepFrame(peer.KeepLocal));
        }

        _logger.LogDebug("Node {NodeId}: {Link} established", Id, link);
        link.Handshake.TrySetResult(id);
        if (peer.Reconnecting is { } reconnecting)
        {
            // The outage is over (by our dial or by the peer's): the reconnection loop stops.
            peer.Reconnecting = null;
            MeshLink.CancelSoon(reconnecting);
        }

        return raised;
    }

    private static void FlushPending(MeshPeer peer, MeshLink link)
    {
        while (peer.Pending.TryDequeue(out var pending))
        {
            link.Enqueue(pending);
        }
    }

    private string DialerOf(MeshLink link) => link.Outgoing ? Id : link.RemoteId!;

    /// <summary>Removes a peer for good: closes its link, stops reconnecting, drops what waited for it. Caller holds the lock.</summary>
    private NodeEvent[] ForgetLocked(MeshPeer peer, Exception? reason)
    {
        _peers.Remove(peer.Id);
        if (peer.Reconnecting is { } reconnecting)
        {
            MeshLink.CancelSoon(reconnecting);
        }

        peer.Reconnecting = null;
        var dropped = peer.Bus.Buffer.Count + peer.Pending.Count;
        peer.Bus.Buffer.Clear();
        peer.Pending.Clear();
        var raised = new List<NodeEvent>(2);
        if (peer.Link is { } link)
        {
            peer.Link = null;
            link.Superseded = true; // its end is accounted for here
            link.CloseAfter(Protocol == MeshProtocol.Native ? NativeMeshCodec.Frame(MeshFrameType.Close, "disconnected"u8) : null, null);
            raised.Add(new NodeEvent(NodeEventKind.Disconnect) { PeerId = peer.Id, Error = reason });
        }

        raised.Add(new NodeEvent(NodeEventKind.PeerGone) { PeerId = peer.Id, Count = dropped, Error = reason });
        return [.. raised];
    }

    /// <summary>Called by a link once both its loops ended and its socket is closed.</summary>
    internal void OnLinkClosed(MeshLink link)
    {
        var raised = new List<NodeEvent>();
        MeshPeer? reconnect = null;
        lock (_gate)
        {
            _links.Remove(link);
            _openLinks.OnNext(_links.Count);
            var wasStable = link.Phase == LinkPhase.Stable;
            link.Phase = LinkPhase.Closed;
            link.Handshake.TrySetException(link.CloseReason ?? new PeerLostException("The connection closed during the handshake.", link.RemoteId));
            if (wasStable && !link.Superseded && link.RemoteId is { } id && _peers.TryGetValue(id, out var peer) && peer.Link == link)
            {
                peer.Link = null;
                peer.LostAt = Time.GetTimestamp();
                _lostLinks[id] = link.LinkId;
                raised.Add(new NodeEvent(NodeEventKind.Disconnect) { PeerId = id, Error = link.CloseReason });
                if (_closed)
                {
                    // Closing: nothing is reconnected or forgotten one by one.
                }
                else if (peer.KeepLocal && peer.Address is not null)
                {
                    reconnect = peer;
                    peer.Reconnecting = new CancellationTokenSource();
                }
                else if (Protocol == MeshProtocol.Native && peer.KeepRemote && link.CloseReason is not null)
                {
                    // The remote keeps this link and will dial again: hold its buffers until it does (or BufferTimeout).
                }
                else
                {
                    raised.AddRange(ForgetLocked(peer, link.CloseReason));
                }
            }
        }

        if (link.CloseReason is { } reason && reason is not PeerRefusedException)
        {
            _logger.LogDebug(reason, "Node {NodeId}: {Link} ended", Id, link);
        }

        Raise(raised);
        if (reconnect is not null)
        {
            _ = ReconnectAsync(reconnect, reconnect.Reconnecting!.Token);
        }
    }

    /// <summary>Dials a kept peer again with the backoff policy until it is back, a different node answers, or the policy gives up.</summary>
    private async Task ReconnectAsync(MeshPeer peer, CancellationToken cancellationToken)
    {
        await Task.Yield();
        var retries = 0;
        var pipeline = ReconnectPipeline.Build(Options.Reconnect, Time, (attempt, delay, error) =>
        {
            retries = attempt;
            Raise(new NodeEvent(NodeEventKind.Backoff) { PeerId = peer.Id, Attempt = attempt, Delay = delay, Error = error });
        });
        Exception? giveUp = null;
        try
        {
            giveUp = await pipeline.ExecuteAsync(
                async token =>
                {
                    string address;
                    lock (_gate)
                    {
                        if (peer.Link is { Phase: LinkPhase.Stable } || !_peers.ContainsKey(peer.Id))
                        {
                            return null;
                        }

                        address = peer.Address!;
                    }

                    var link = await DialAsync(address, peer.Id, keep: true, token).ConfigureAwait(false);
                    try
                    {
                        await link.Handshake.Task.WaitAsync(token).ConfigureAwait(false);
                        return null;
                    }
                    catch (PeerRefusedException ex) when (ex.Reason == PeerRefusal.UnexpectedNode)
                    {
                        return (Exception?)ex; // another node lives there now: give up, do not retry
                    }
                    catch (Exception ex) when (ex is PeerRefusedException { Reason: PeerRefusal.Duplicate } || HasOtherLink(link, peer.Id))
                    {
                        await WhenConnectedAsync(peer.Id, token).ConfigureAwait(false);
                        return null;
                    }
                    catch (OperationCanceledException) when (link.Handshake.Task.IsCompletedSuccessfully)
                    {
                        return null; // this very link ended the outage (which cancels the loop)
                    }
                    catch (OperationCanceledException)
                    {
                        // EstablishLocked cancels this loop when any link to the peer becomes THE link, this dial's own
                        // included (and before its handshake task completes): only a dial that lost is aborted.
                        lock (_gate)
                        {
                            if (link.Phase != LinkPhase.Stable)
                            {
                                link.Abort(null);
                            }
                        }

                        throw;
                    }
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return; // connected by the peer's own dial, forgotten, or the node closed
        }
        catch (Exception ex)
        {
            giveUp = new ReconnectFailedException(retries, ex);
        }

        if (giveUp is null)
        {
            return;
        }

        NodeEvent[]? raised = null;
        lock (_gate)
        {
            if (_peers.TryGetValue(peer.Id, out var current) && current == peer && peer.Link is null && !_closed)
            {
                raised = ForgetLocked(peer, giveUp);
            }
        }

        Raise(raised);
    }

    private void OnHeartbeatTick()
    {
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            var now = Time.GetTimestamp();
            foreach (var link in _links)
            {
                if (link.IsClosing)
                {
                    // A graceful close waits for the peer to close its side too, but not forever.
                    if (link.ClosingSince is { } since && Time.GetElapsedTime(since, now) >= Options.HandshakeTimeout)
                    {
                        link.Abort(link.CloseReason);
                    }

                    continue;
                }

                if (link.Phase == LinkPhase.Handshaking)
                {
                    if (Time.GetElapsedTime(link.StartedAt, now) >= Options.HandshakeTimeout)
                    {
                        link.Abort(new PeerRefusedException(PeerRefusal.Timeout, $"The handshake took longer than {Options.HandshakeTimeout.TotalSeconds:0.###} s.", link.RemoteId ?? link.ExpectedId));
                    }
                }
                else if (link.Phase == LinkPhase.Stable)
                {
                    if (Options.PeerTimeout != Timeout.InfiniteTimeSpan && Time.GetElapsedTime(link.LastRead, now) >= Options.PeerTimeout)
                    {
                        link.Abort(new PeerLostException($"Nothing arrived from peer {link.RemoteId} for {Options.PeerTimeout.TotalSeconds:0.###} s: it is taken as dead.", link.RemoteId));
                    }
                    else if (Time.GetElapsedTime(link.LastWrite, now) >= Options.HeartbeatInterval)
                    {
                        link.Enqueue(Protocol == MeshProtocol.Native ? PingFrame : MasterlessHeartbeat);
                    }
                }
            }
        }
    }

    private static readonly byte[] PingFrame = NativeMeshCodec.Frame(MeshFrameType.Ping, ReadOnlySpan<byte>.Empty);
    private static readonly byte[] MasterlessHeartbeat = "true\r\n"u8.ToArray();

    private void Raise(NodeEvent e)
    {
        try
        {
            _nodeEvents.OnNext(e);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Node {NodeId}: a NodeEvents subscriber threw", Id);
        }
    }

    private void Raise(IEnumerable<NodeEvent>? events)
    {
        if (events is null)
        {
            return;
        }

        foreach (var e in events)
        {
            Raise(e);
        }
    }

    private void Deliver(MeshMessage message)
    {
        try
        {
            _messages.OnNext(message);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Node {NodeId}: a Messages subscriber threw", Id);
        }
    }

    private void Deliver(BusEvent busEvent)
    {
        try
        {
            _busEvents.OnNext(busEvent);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Node {NodeId}: an Events subscriber threw", Id);
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"node {Id} ({Protocol}, {Info ?? "not listening"})";
}

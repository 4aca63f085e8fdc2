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
/// <see cref="NodeEvents"/>. <see cref="CloseAsync"/> (or disposal) ends every link and completes them. A subscriber that
/// throws harms only itself: what it threw is logged and published on <see cref="Errors"/>.
/// </summary>
/// <remarks>
/// A kept peer (<see cref="Keep"/>; <see cref="ConnectAsync"/> keeps by default) is reconnected after a lost link with
/// <see cref="UhuraNodeOptions.Reconnect"/>'s backoff, by the client's re-subscription operator
/// (<see cref="ObservableResilienceExtensions.RetryWith{T}"/>); packets and bus events sent meanwhile wait, bounded, and go out
/// when it is back. Every timer runs on <see cref="UhuraNodeOptions.TimeProvider"/>.
/// </remarks>
public sealed partial class UhuraNode : IAsyncDisposable, IDispatchTarget
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, MeshPeer> _peers = new(StringComparer.Ordinal);
    private readonly HashSet<MeshLink> _links = [];
    private readonly Dictionary<string, bool> _keepBeforeConnect = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ulong> _lostLinks = new(StringComparer.Ordinal);
    // Only the dispatcher's pump calls these (one notification at a time): no Synchronize gate, which a slow
    // subscriber would turn into a wait for every link's read loop.
    private readonly Subject<NodeEvent> _nodeEvents = new();
    private readonly Subject<MeshMessage> _messages = new();
    private readonly Subject<BusEvent> _busEvents = new();
    private readonly EventDispatcher _dispatcher; // the links' dispatcher, with this node as the one target
    private readonly BehaviorSubject<string?> _listening = new(null);
    private readonly BehaviorSubject<int> _openLinks = new(0);
    private readonly Lock _openLinksGate = new();
    private readonly ErrorStream _errors;
    private readonly IObservable<string> _guardedListening;
    private readonly IObservable<MeshMessage> _guardedMessages;
    private readonly IObservable<BusEvent> _guardedEvents;
    private readonly IObservable<NodeEvent> _guardedNodeEvents;
    private readonly IObservable<string> _guardedPeerConnected;
    private readonly IObservable<string> _guardedPeerDisconnected;
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
    private int _openLinkCount;
    private long _openLinksVersion;
    private long _openLinksPublished;
    private bool _closed;

    /// <summary>Creates a node; it does nothing until it listens or connects.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public UhuraNode(UhuraNodeOptions? options = null)
    {
        Options = options ?? UhuraNodeOptions.Default;
        Wire = MeshWire.For(Options.Protocol);
        Options.Validate();
        Id = Options.NodeId ?? Guid.NewGuid().ToString("N");
        Time = Options.TimeProvider;
        _serializer = Options.CreateSerializer();
        _logger = Options.LoggerFactory.CreateLogger<UhuraNode>();
        _errors = new ErrorStream(_logger, "UhuraNode.Errors");
        _dispatcher = new EventDispatcher(Options.MaxQueuedDeliveries, _logger);
        _guardedListening = Guard(_listening.Where(static info => info is not null).Select(static info => info!), "UhuraNode.Listening", null);
        _guardedMessages = Guard(_messages.AsObservable(), "UhuraNode.Messages", null);
        _guardedEvents = Guard(_busEvents.AsObservable(), "UhuraNode.Events", static e => e.Name);
        _guardedNodeEvents = Guard(_nodeEvents.AsObservable(), "UhuraNode.NodeEvents", static e => e.Kind.ToString());
        _guardedPeerConnected = Guard(_nodeEvents.Where(static e => e.Kind == NodeEventKind.Initialized).Select(static e => e.PeerId!), "UhuraNode.PeerConnected", null);
        _guardedPeerDisconnected = Guard(_nodeEvents.Where(static e => e.Kind == NodeEventKind.PeerGone).Select(static e => e.PeerId!), "UhuraNode.PeerDisconnected", null);
        var tick = Options.HeartbeatInterval / 2;
        _heartbeatTimer = Time.CreateTimer(static s => ((UhuraNode)s!).OnTimer(static node => node.OnHeartbeatTick()), this, tick, tick);
        _busTimer = Time.CreateTimer(static s => ((UhuraNode)s!).OnTimer(static node => node.OnBusTick()), this, Options.AcknowledgeInterval, Options.AcknowledgeInterval);
    }

    /// <summary>The node's id.</summary>
    public string Id { get; }

    /// <summary>The wire the node speaks.</summary>
    public MeshProtocol Protocol => Options.Protocol;

    /// <summary>How this node's messages are encoded and its links' bytes decoded (<see cref="Protocol"/>'s wire).</summary>
    internal MeshWire Wire { get; }

    /// <summary>The node's address, the endpoint URI it listens on with the real port (<c>tcp://127.0.0.1:41234</c>); null before it listens.</summary>
    public string? Info => Volatile.Read(ref _info);

    /// <summary>The node's address once it listens: replays it to late subscribers, then completes when the node closes.</summary>
    public IObservable<string> Listening => _guardedListening;

    /// <summary>Packets peers sent to this node (masterless's <c>message(sender, packet)</c>). Hot; completes when the node closes.</summary>
    public IObservable<MeshMessage> Messages => _guardedMessages;

    /// <summary>Events other nodes emitted on the bus, each exactly once. Hot; completes when the node closes.</summary>
    public IObservable<BusEvent> Events => _guardedEvents;

    /// <summary>Everything that happens to the node and its links (verbose's stream events and more). Hot; completes when the node closes.</summary>
    public IObservable<NodeEvent> NodeEvents => _guardedNodeEvents;

    /// <summary>A peer's id each time a link to it becomes ready (masterless's <c>connect</c>), including reconnections.</summary>
    public IObservable<string> PeerConnected => _guardedPeerConnected;

    /// <summary>A peer's id when the node forgets it: not connected, not kept, not being reconnected (masterless's <c>disconnect</c>).</summary>
    public IObservable<string> PeerDisconnected => _guardedPeerDisconnected;

    /// <summary>
    /// What went wrong in the node without failing a call: a subscriber of one of its streams that threw
    /// (<see cref="SubscriberException"/>; the other subscribers still got the notification, and no link was dropped).
    /// Also logged when a logger is configured. A subscriber of <see cref="Errors"/> that throws is logged and ignored.
    /// Hot; completes when the node closes.
    /// </summary>
    public IObservable<UhuraException> Errors => _errors;

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

    /// <summary>The dispatcher holds <see cref="UhuraNodeOptions.MaxQueuedDeliveries"/> or more: a link's read loop waits before reading on.</summary>
    internal bool DeliveriesFull => _dispatcher.IsFull;

    /// <summary>Completes once the dispatcher has room again.</summary>
    internal Task WhenDeliverySpaceAsync() => _dispatcher.WhenSpaceAsync();

    /// <summary>
    /// For tests: completes once everything queued for the subscribers before this call was delivered (their calls
    /// returned), or at once when the node closed: an event raised before it can no longer reach a later subscriber.
    /// </summary>
    internal Task WhenDeliveredAsync() => _dispatcher.WhenDeliveredAsync(this);

    /// <summary>For tests: a peer's bus positions, as this node sees them (null when no peer has that id).</summary>
    internal (ulong Sent, int Unacknowledged, ulong Received, ulong Delivered, ulong AckSent)? BusState(string peerId)
    {
        lock (_gate)
        {
            return _peers.TryGetValue(peerId, out var peer)
                ? (peer.Bus.LastSent, peer.Bus.Buffer.Count, peer.Bus.LastReceived, peer.Bus.LastDelivered, peer.Bus.LastAckSent)
                : null;
        }
    }

    internal TimeProvider Time { get; }

    /// <summary>Bus events of <paramref name="eventName"/> only.</summary>
    public IObservable<BusEvent> Event(string eventName)
    {
        ArgumentNullException.ThrowIfNull(eventName);
        return Guard(_busEvents.Where(e => string.Equals(e.Name, eventName, StringComparison.Ordinal)), "UhuraNode.Event", static e => e.Name);
    }

    /// <summary>A stream whose every subscriber is guarded: what it throws goes to <see cref="Errors"/> and the log, never to the emitter.</summary>
    private GuardedObservable<T> Guard<T>(IObservable<T> source, string streamName, Func<T, string?>? eventName)
        => new(source, streamName, eventName, ReportSubscriberError);

    private void ReportSubscriberError(SubscriberException error)
    {
        _logger.LogError(error.InnerException, "Node {NodeId}: a subscriber of {Stream} threw; the others go on", Id, error.StreamName);
        _errors.OnNext(error);
    }

    /// <summary>A link's read loop failed on the library's own fault (not the peer's, not the transport's): the link is dropped.</summary>
    internal void LogUnexpected(MeshLink link, Exception error)
        => _logger.LogError(error, "Node {NodeId}: unexpected error in the read loop of {Link}", Id, link);

    /// <summary>Counts a link opened or closed. Caller holds the lock; <see cref="PublishOpenLinks"/> tells it after.</summary>
    private void CountOpenLinksLocked()
    {
        _openLinkCount = _links.Count;
        _openLinksVersion++;
    }

    /// <summary>Publishes the newest link count on <see cref="OpenLinks"/>, outside the node's lock; an older count is never published after a newer one.</summary>
    private void PublishOpenLinks()
    {
        lock (_openLinksGate)
        {
            int count;
            long version;
            lock (_gate)
            {
                count = _openLinkCount;
                version = _openLinksVersion;
            }

            if (version == _openLinksPublished)
            {
                return;
            }

            _openLinksPublished = version;
            _openLinks.OnNext(count);
        }
    }

    /// <summary>Runs a timer's work; what escapes it is logged, never thrown on the timer's thread (which would end the process).</summary>
    private void OnTimer(Action<UhuraNode> work)
    {
        try
        {
            work(this);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Node {NodeId}: a timer's work failed", Id);
        }
    }

    /// <summary>Queues a node event for the subscribers (in order with the node's other notifications).</summary>
    private void Raise(NodeEvent e) => _dispatcher.Enqueue(Delivery.Of(this, e));

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

    /// <summary>Queues a packet for the <see cref="Messages"/> subscribers.</summary>
    private void Deliver(MeshMessage message) => _dispatcher.Enqueue(Delivery.Of(this, message));

    /// <summary>
    /// Queues what a bus frame brought (an event, or null when it was a duplicate or a loop): once its turn came and the
    /// subscribers returned, the peer's delivered position moves to <paramref name="seq"/>, and only that is acknowledged.
    /// </summary>
    private void Deliver(BusEvent? busEvent, BusPeerState bus, int epoch, ulong seq) => _dispatcher.Enqueue(Delivery.Of(this, busEvent, bus, epoch, (long)seq));

    /// <summary>
    /// The dispatcher's pump: calls the subscribers of one notification, then counts a bus frame as delivered; at the end
    /// (queued by <see cref="CloseAsync"/> after everything else), completes the streams.
    /// </summary>
    ValueTask IDispatchTarget.DispatchAsync(Delivery delivery)
    {
        if (delivery.IsCompletion)
        {
            _nodeEvents.OnCompleted();
            _messages.OnCompleted();
            _busEvents.OnCompleted();
            return ValueTask.CompletedTask;
        }

        try
        {
            switch (delivery.Item)
            {
                case MeshMessage message:
                    _messages.OnNext(message);
                    break;
                case BusEvent busEvent:
                    _busEvents.OnNext(busEvent);
                    break;
                case NodeEvent nodeEvent:
                    _nodeEvents.OnNext(nodeEvent);
                    break;
            }
        }
        catch (Exception ex)
        {
            // Subscribers are guarded (GuardedObservable): only the library's own failure lands here.
            _logger.LogError(ex, "Node {NodeId}: delivering {Item} failed", Id, delivery.Item);
        }

        if (delivery.AckState is BusPeerState bus)
        {
            lock (_gate)
            {
                // A frame of an earlier incarnation of the peer does not count against the new one's numbers.
                if (bus.Epoch == delivery.Epoch && (ulong)delivery.AckSeq > bus.LastDelivered)
                {
                    bus.LastDelivered = (ulong)delivery.AckSeq;
                }
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Nothing to flush: a bus peer's delivered position is moved per frame, and the bus timer acknowledges it.</summary>
    void IDispatchTarget.FlushAcks()
    {
    }

    /// <inheritdoc/>
    public override string ToString() => $"node {Id} ({Protocol}, {Info ?? "not listening"})";
}

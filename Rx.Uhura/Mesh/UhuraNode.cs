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

    /// <summary>Packets peers sent to this node (masterless's <c>message(sender, packet)</c>). Hot; completes when the node closes.</summary>
    public IObservable<MeshMessage> Messages => _messages.AsObservable();

    /// <summary>Events other nodes emitted on the bus, each exactly once. Hot; completes when the node closes.</summary>
    public IObservable<BusEvent> Events => _busEvents.AsObservable();

    /// <summary>Everything that happens to the node and its links (verbose's stream events and more). Hot; completes when the node closes.</summary>
    public IObservable<NodeEvent> NodeEvents => _nodeEvents.AsObservable();

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

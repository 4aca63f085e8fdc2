using System.Net.Sockets;
using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Mesh;

/// <summary>Steps shared by the mesh tests: a packet round trip, recorded node events, a port taken over, a quiet window.</summary>
internal static class MeshSteps
{
    /// <summary>Fast reconnection for tests: 20 ms first delay, 100 ms cap.</summary>
    public static readonly ReconnectOptions FastReconnect = ReconnectOptions.Default with { FirstDelay = TimeSpan.FromMilliseconds(20), MaxDelay = TimeSpan.FromMilliseconds(100) };

    /// <summary>
    /// <paramref name="from"/> sends a ping to <paramref name="to"/>, which answers with a pong: both directions of the
    /// link work, and everything either side sent before has been read by the other (a link is ordered).
    /// </summary>
    public static async Task RoundTripAsync(UhuraNode from, UhuraNode to)
    {
        var token = Guid.NewGuid().ToString("N");
        var ping = to.Messages.Where(m => m.SenderId == from.Id && m.Packet is JObject o && (string?)o["ping"] == token);
        using var echo = ping.Subscribe(_ => Assert.True(to.Send(from.Id, new { pong = token })));
        var pong = Wait.First(from.Messages, m => m.SenderId == to.Id && m.Packet is JObject o && (string?)o["pong"] == token);
        Assert.True(from.Send(to.Id, new { ping = token }));
        await pong;
    }

    /// <summary>Records a node's events (thread-safe) from now on.</summary>
    public static EventLog Record(UhuraNode node) => new(node);

    /// <summary>The events <paramref name="source"/> produces during <paramref name="window"/>: to show that something does NOT happen.</summary>
    public static Task<IList<T>> During<T>(IObservable<T> source, TimeSpan window)
        => source.TakeUntil(Observable.Timer(window)).ToList().ToTask();

    /// <summary>
    /// Listens on exactly <paramref name="uri"/> (a port another node just released), retrying briefly while the system
    /// still holds it.
    /// </summary>
    public static async Task ListenAgainAsync(UhuraNode node, string uri)
    {
        using var timeout = new CancellationTokenSource(Wait.Timeout);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await node.ListenAsync(uri, timeout.Token);
                return;
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse && !timeout.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), timeout.Token);
            }
        }
    }

    /// <summary>A node's events, recorded as they happen.</summary>
    internal sealed class EventLog : IDisposable
    {
        private readonly List<NodeEvent> _events = [];
        private readonly IDisposable _subscription;

        public EventLog(UhuraNode node) => _subscription = node.NodeEvents.Subscribe(e =>
        {
            lock (_events)
            {
                _events.Add(e);
            }
        });

        /// <summary>The kinds of the events recorded about <paramref name="peerId"/>, in order.</summary>
        public NodeEventKind[] KindsFor(string peerId, params NodeEventKind[] only)
        {
            lock (_events)
            {
                return [.. _events.Where(e => e.PeerId == peerId && (only.Length == 0 || only.Contains(e.Kind))).Select(e => e.Kind)];
            }
        }

        public NodeEvent[] Of(NodeEventKind kind)
        {
            lock (_events)
            {
                return [.. _events.Where(e => e.Kind == kind)];
            }
        }

        public void Dispose() => _subscription.Dispose();
    }
}

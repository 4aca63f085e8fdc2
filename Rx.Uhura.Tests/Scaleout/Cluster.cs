using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Reactive.Threading.Tasks;
using Rx.Uhura.Scaleout;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Scaleout;

/// <summary>Several servers on real sockets (port 0) sharing backplanes, and native clients connected to them.</summary>
internal sealed class Cluster : IAsyncDisposable
{
    private readonly List<UhuraClient> _clients = [];

    private Cluster(IReadOnlyList<UhuraServer> servers) => Servers = servers;

    public IReadOnlyList<UhuraServer> Servers { get; }

    public UhuraServer this[int index] => Servers[index];

    public static async Task<Cluster> StartAsync(params IUhuraBackplane[] backplanes)
    {
        var servers = backplanes.Select((b, i) => new UhuraServer(UhuraServerOptions.Default with { Backplane = b, ServerId = "s" + i })).ToList();
        foreach (var server in servers)
        {
            await server.ListenAsync("tcp://127.0.0.1:0").For();
        }

        return new Cluster(servers);
    }

    /// <summary>A client of server <paramref name="server"/> (native unless told), connected, and its connection there (whose id <c>SendTo</c> takes).</summary>
    public async Task<(UhuraClient Client, Connection Connection)> ConnectAsync(int server, WireProtocol protocol = WireProtocol.Native)
    {
        var accepted = Wait.First(Servers[server].Connections);
        var client = UhuraClient.Connect(Servers[server].Uri!, new UhuraClientOptions { Protocol = protocol });
        _clients.Add(client);
        await client.WhenConnectedAsync().For();
        return (client, await accepted);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        foreach (var server in Servers)
        {
            await server.CloseAsync().For();
        }
    }
}

/// <summary>What a client received of one event, recorded from now on.</summary>
internal sealed class Received : IDisposable
{
    private readonly IConnectableObservable<UhuraEvent> _events;
    private readonly IDisposable _connection;

    public Received(UhuraClient client, string eventName)
    {
        _events = client.Event(eventName).Replay();
        _connection = _events.Connect();
    }

    public Task<UhuraEvent> First() => Wait.First(_events);

    public Task<IList<UhuraEvent>> Count(int count) => _events.Take(count).ToList().ToTask().WaitAsync(Wait.Timeout);

    public void Dispose() => _connection.Dispose();
}

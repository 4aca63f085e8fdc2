using System.Net;
using System.Net.Sockets;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Reactive.Threading.Tasks;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Observability;

/// <summary>The <c>Rx.Uhura</c> meter, read with a <see cref="System.Diagnostics.Metrics.MeterListener"/> over real exchanges.</summary>
[Collection(ObservabilityCollection.Name)]
public sealed class MetricsTests : IAsyncLifetime
{
    private static readonly ReconnectOptions Fast = new() { FirstDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(100) };

    private readonly MetricRecorder _metrics = new();
    private readonly UhuraServer _server = new();
    private readonly ReplaySubject<Connection> _connections = new();

    public async Task InitializeAsync()
    {
        _server.Connections.Subscribe(_connections);
        await _server.ListenAsync("tcp://127.0.0.1:0");
    }

    public async Task DisposeAsync()
    {
        await _server.CloseAsync().For();
        _metrics.Dispose();
    }

    [Theory]
    [InlineData(WireProtocol.Native, "native")]
    [InlineData(WireProtocol.NodeUhura, "node-uhura")]
    public async Task An_exchange_counts_its_events_bytes_and_connections(WireProtocol protocol, string protocolTag)
    {
        const int toServer = 20;
        const int toClient = 5;
        _server.Connections.Subscribe(c => c.Event("ping").Subscribe(e =>
        {
            if (e.Arg<int>(0) < toClient)
            {
                c.Post("pong", e.Arg<int>(0));
            }
        }));
        var client = await UhuraClient.ConnectAsync(_server.Uri!, new UhuraClientOptions { Protocol = protocol }).For();
        var pongs = client.Event("pong").Take(toClient).ToList().ToTask();
        Assert.Equal(1, _metrics.Total("uhura.connections", ("uhura.side", "client")));
        await Wait.First(_connections);
        Assert.Equal(1, _metrics.Total("uhura.connections", ("uhura.side", "server")));
        Assert.Equal(1, _metrics.Total("uhura.connections.opened", ("uhura.side", "server"), ("uhura.protocol", protocolTag)));
        Assert.Equal(1, _metrics.Total("uhura.connections.opened", ("uhura.side", "client"), ("uhura.protocol", protocolTag)));

        for (var i = 0; i < toServer; i++)
        {
            await client.Send("ping", i).For();
        }

        await pongs.For();
        Assert.Equal(toServer, _metrics.Total("uhura.events.received", ("uhura.side", "server")));
        Assert.Equal(toServer, _metrics.Total("uhura.events.sent", ("uhura.side", "client")));
        Assert.Equal(toClient, _metrics.Total("uhura.events.received", ("uhura.side", "client")));
        Assert.Equal(toClient, _metrics.Total("uhura.events.sent", ("uhura.side", "server")));

        await client.Disconnect().For();
        await _server.CloseAsync().For();
        Assert.Equal(0, _metrics.Total("uhura.connections", ("uhura.side", "client")));
        Assert.Equal(0, _metrics.Total("uhura.connections", ("uhura.side", "server")));

        // Every byte one side wrote, the other read: the closes were graceful.
        var clientSent = _metrics.Total("uhura.bytes.sent", ("uhura.side", "client"));
        var serverSent = _metrics.Total("uhura.bytes.sent", ("uhura.side", "server"));
        Assert.True(clientSent > toServer * "ping".Length, $"client sent {clientSent} bytes");
        Assert.True(serverSent > toClient * "pong".Length, $"server sent {serverSent} bytes");
        Assert.Equal(clientSent, _metrics.Total("uhura.bytes.received", ("uhura.side", "server")));
        Assert.Equal(serverSent, _metrics.Total("uhura.bytes.received", ("uhura.side", "client")));
    }

    [Fact]
    public void Instruments_are_published_with_units()
    {
        // Creating a connection-less client publishes nothing new; the meter's instruments exist from the first use of the library.
        using var client = UhuraClient.Connect(UnusedEndpoint(), new UhuraClientOptions { Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromHours(1), MaxDelay = TimeSpan.FromHours(1) } });
        Assert.Equal("{connection}", _metrics.Unit("uhura.connections"));
        Assert.Equal("{event}", _metrics.Unit("uhura.events.received"));
        Assert.Equal("By", _metrics.Unit("uhura.bytes.sent"));
        Assert.Equal("By", _metrics.Unit("uhura.bytes.received"));
        Assert.Equal("{event}", _metrics.Unit("uhura.acks.pending"));
        Assert.Equal("{event}", _metrics.Unit("uhura.outbound.queued"));
        Assert.Equal("{reconnect}", _metrics.Unit("uhura.client.reconnects"));
        Assert.Equal("{resume}", _metrics.Unit("uhura.session.resumes"));
    }

    [Fact]
    public async Task Acks_pending_are_observed_until_the_peer_acknowledges()
    {
        using var release = new ManualResetEventSlim();
        _server.Connections.Subscribe(c => c.Event("hold").Take(1).Subscribe(_ => release.Wait(Wait.Timeout))); // blocks this link's reading
        await using var client = await UhuraClient.ConnectAsync(_server.Uri!).For();
        var before = _metrics.Observe("uhura.acks.pending", "client");
        client.Post("hold");
        client.Post("more");
        client.Post("more");
        Assert.Equal(before + 3, _metrics.Observe("uhura.acks.pending", "client"));
        release.Set();
        await client.Connection!.WhenAcknowledgedAsync().For();
        Assert.Equal(before, _metrics.Observe("uhura.acks.pending", "client"));
    }

    [Fact]
    public async Task Sends_queued_while_disconnected_are_observed()
    {
        var client = UhuraClient.Connect(UnusedEndpoint(), new UhuraClientOptions { Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromHours(1), MaxDelay = TimeSpan.FromHours(1) } });
        await Wait.First(client.State, s => s.Status == ConnectionStatus.Reconnecting);
        var before = _metrics.Observe("uhura.outbound.queued", "client");
        Assert.True(client.Post("a"));
        Assert.True(client.Post("b"));
        Assert.True(client.Post("c"));
        Assert.Equal(before + 3, _metrics.Observe("uhura.outbound.queued", "client"));
        client.Dispose();
        Assert.Equal(before, _metrics.Observe("uhura.outbound.queued", "client")); // failed, and the client is no longer observed
        Assert.True(_metrics.Total("uhura.client.reconnect.attempts") >= 1);
    }

    [Fact]
    public async Task A_resume_and_a_reconnect_are_counted()
    {
        await using var client = UhuraClient.Connect(_server.Uri!, new UhuraClientOptions { Reconnect = Fast });
        await client.WhenConnectedAsync().For();
        (await Wait.First(_connections)).Dispose();
        await Wait.First(client.State, s => s.Status == ConnectionStatus.Connected && s.IsReconnect);
        await Wait.First(_connections.Skip(1));
        Assert.Equal(1, _metrics.Total("uhura.client.reconnects"));
        Assert.True(_metrics.Total("uhura.client.reconnect.attempts") >= 1);
        Assert.Equal(1, _metrics.Total("uhura.session.resumes", ("uhura.outcome", "resumed")));
        Assert.Equal(0, _metrics.Total("uhura.session.resumes", ("uhura.outcome", "not_found")));
        Assert.Equal(1, _metrics.Total("uhura.stream.resumes", ("uhura.outcome", "resumed")));
        Assert.Equal(2, _metrics.Total("uhura.connections.opened", ("uhura.side", "server")));
        Assert.Equal(1, _metrics.Total("uhura.connections", ("uhura.side", "server")));
    }

    [Fact]
    public async Task A_session_id_the_server_does_not_know_is_counted_as_not_found()
    {
        await using var client = await UhuraClient.ConnectAsync(_server.Uri!, new UhuraClientOptions
        {
            InitialSession = new Dictionary<string, JToken> { ["sessionID"] = "never-issued" },
        }).For();
        await Wait.First(_connections);
        Assert.Equal(1, _metrics.Total("uhura.session.resumes", ("uhura.outcome", "not_found")));
        Assert.Equal(0, _metrics.Total("uhura.session.resumes", ("uhura.outcome", "resumed")));
        Assert.False(_metrics.Recorded("uhura.stream.resumes")); // a first link has no streams to resume
        Assert.Equal(0, _metrics.Total("uhura.client.reconnects"));
    }

    /// <summary>An endpoint nobody listens on: a port the OS just handed out and took back.</summary>
    internal static string UnusedEndpoint()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return $"tcp://127.0.0.1:{port}";
    }
}

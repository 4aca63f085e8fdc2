using System.Reactive.Linq;
using System.Reactive.Subjects;

namespace Rx.Uhura.Tests.Core;

/// <summary>Per-connection counters and the opt-in statistics request of the native protocol.</summary>
public sealed class StatisticsTests
{
    private static async Task<UhuraServer> StartAsync(bool expose, ReplaySubject<Connection> connections)
    {
        var server = new UhuraServer(new UhuraServerOptions { ExposeStatistics = expose });
        server.Connections.Subscribe(connections);
        server.Connections.Subscribe(c => c.Event("ping").Subscribe(e => c.Post("pong", e.Args[0])));
        await server.ListenAsync("tcp://127.0.0.1:0");
        return server;
    }

    [Fact]
    public async Task A_server_that_exposes_statistics_reports_the_events_and_bytes_each_connection_exchanged()
    {
        const int count = 25;
        var connections = new ReplaySubject<Connection>();
        await using var server = await StartAsync(expose: true, connections);
        await using var client = UhuraClient.Connect(server.Uri!);
        var pongs = Wait.First(client.Event("pong").Skip(count - 1));
        for (var i = 0; i < count; i++)
        {
            await client.Send("ping", i).For();
        }

        await pongs;
        var serverSide = await Wait.First(connections);
        var statistics = await client.GetServerStatisticsAsync().For();

        var c = Assert.Single(statistics.Connections);
        Assert.Equal(1, statistics.ConnectionCount);
        Assert.Equal(serverSide.Id, c.Id);
        Assert.Equal(WireProtocol.Native, c.Protocol);
        Assert.Equal(client.Session.Id, c.SessionId);
        Assert.StartsWith("127.0.0.1:", c.RemoteEndPoint);
        Assert.Equal(count, c.EventsIn);
        Assert.Equal(count, c.EventsOut);
        Assert.True(c.BytesIn > count * 10, $"bytes in {c.BytesIn}");
        Assert.True(c.BytesOut > count * 10, $"bytes out {c.BytesOut}");
        Assert.True(statistics.Uptime >= TimeSpan.Zero);
        Assert.True(c.ConnectedSince >= statistics.StartedAt && c.ConnectedSince <= statistics.Timestamp);

        // The same numbers locally, and the request was not delivered as an application event.
        var local = server.GetStatistics().Connections.Single();
        Assert.Equal(count, local.EventsIn);
        Assert.True(local.EventsOut >= count);
        var clientSide = client.Connection!.GetStatistics();
        Assert.Equal(count, clientSide.EventsIn);
        Assert.True(clientSide.BytesIn > 0 && clientSide.BytesOut > 0);
    }

    [Fact]
    public async Task Without_the_option_the_request_is_refused_with_a_typed_error_and_the_connection_keeps_working()
    {
        var connections = new ReplaySubject<Connection>();
        await using var server = await StartAsync(expose: false, connections);
        var received = new List<string>();
        server.Events.Subscribe(e =>
        {
            lock (received)
            {
                received.Add(e.Name);
            }
        });
        await using var client = UhuraClient.Connect(server.Uri!);

        var error = await Assert.ThrowsAsync<StatisticsUnavailableException>(() => client.GetServerStatisticsAsync().For());
        Assert.Contains("ExposeStatistics", error.Message, StringComparison.Ordinal);

        var pong = Wait.First(client.Event("pong"));
        await client.Send("ping", 7).For();
        Assert.Equal(7, (await pong).Arg<int>(0));
        Assert.Equal(ConnectionStatus.Connected, client.CurrentState.Status);
        lock (received)
        {
            Assert.Equal(["ping"], received);
        }

        Assert.Equal(1, server.GetStatistics().Connections.Single().EventsIn);
    }

    [Fact]
    public async Task Statistics_are_refused_on_wires_other_than_native()
    {
        var connections = new ReplaySubject<Connection>();
        await using var server = await StartAsync(expose: true, connections);
        await using var client = UhuraClient.Connect(server.Uri!, new UhuraClientOptions { Protocol = WireProtocol.NodeUhura });
        await Assert.ThrowsAsync<NotSupportedException>(() => client.GetServerStatisticsAsync());
    }
}

using System.Reactive.Subjects;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// The shared session converges: whatever crosses on the wire, both sides end with the same value for every key.
/// On the native wire the server's order decides (concurrent changes of one key from both sides); on both wires the
/// changes of one side leave in the order they were applied there, even from several threads.
/// </summary>
public sealed class SessionConvergenceTests : IAsyncLifetime
{
    private readonly UhuraServer _server = new();
    private readonly ReplaySubject<Connection> _connections = new();

    public async Task InitializeAsync()
    {
        _server.Connections.Subscribe(_connections);
        await _server.ListenAsync("tcp://127.0.0.1:0");
    }

    public async Task DisposeAsync() => await _server.CloseAsync().For();

    /// <summary>Both sides have read everything the other sent before: the acknowledged event follows it on the same link.</summary>
    private static async Task Settle(UhuraClient client, Connection connection)
    {
        await client.Send("settle").For();
        await connection.Send("settle").For();
    }

    [Fact]
    public async Task A_key_changed_by_both_sides_at_once_ends_with_the_same_value_on_both_native()
    {
        const int Rounds = 300;
        await using var client = await UhuraClient.ConnectAsync(_server.Uri!, new UhuraClientOptions { Protocol = WireProtocol.Native }).For();
        var connection = await Wait.First(_connections);
        var diverged = new List<string>();
        var crossed = 0;
        for (var i = 0; i < Rounds; i++)
        {
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var atClient = Task.Run(async () => { await start.Task; client.Session.Set("k", $"client {i}"); });
            var atServer = Task.Run(async () => { await start.Task; connection.Session.Set("k", $"server {i}"); });
            start.SetResult();
            await Task.WhenAll(atClient, atServer).For();
            await Settle(client, connection);
            var (c, s) = (client.Session.Get<string>("k"), connection.Session.Get<string>("k"));
            if (c != s)
            {
                diverged.Add($"round {i}: client '{c}', server '{s}'");
            }

            if (s == $"client {i}")
            {
                crossed++; // the client's change was applied last on the server: the server's was superseded at the client
            }
        }

        Assert.True(diverged.Count == 0, $"{diverged.Count} of {Rounds} rounds diverged ({crossed} ended with the client's value): {string.Join("; ", diverged.Take(5))}");
    }

    [Theory]
    [InlineData(WireProtocol.Native)]
    [InlineData(WireProtocol.NodeUhura)]
    public async Task Changes_made_by_several_threads_of_one_side_reach_the_peer_in_the_order_they_were_applied(WireProtocol protocol)
    {
        await using var client = await UhuraClient.ConnectAsync(_server.Uri!, new UhuraClientOptions { Protocol = protocol }).For();
        var connection = await Wait.First(_connections);
        for (var round = 0; round < 50; round++)
        {
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var writers = Enumerable.Range(0, 4).Select(t => Task.Run(async () =>
            {
                await start.Task;
                for (var i = 0; i < 25; i++)
                {
                    client.Session.Set("k", $"{round}/{t}/{i}");
                }
            })).ToArray();
            start.SetResult();
            await Task.WhenAll(writers).For();
            await Settle(client, connection);
            Assert.Equal(client.Session.Get<string>("k"), connection.Session.Get<string>("k"));
        }
    }

    [Fact]
    public async Task A_key_set_before_the_Welcome_keeps_the_clients_value_on_both_sides()
    {
        var helloRead = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var server = new UhuraServer(new UhuraServerOptions
        {
            // The handshake waits here, so the client's change is made between its Hello and the Welcome.
            Authenticate = async (_, _) =>
            {
                helloRead.TrySetResult();
                await connected.Task;
                return AuthenticationResult.Accept();
            },
        });
        await using var _ = server;
        var connections = new ReplaySubject<Connection>();
        server.Connections.Subscribe(connections);
        await server.ListenAsync("tcp://127.0.0.1:0");
        await using var client = UhuraClient.Create(server.Uri!, new UhuraClientOptions
        {
            Protocol = WireProtocol.Native,
            InitialSession = new Dictionary<string, Newtonsoft.Json.Linq.JToken> { ["k"] = "in the Hello" },
            AuthToken = "any",
        });
        var started = client.StartAsync();
        await helloRead.Task.For();
        client.Session.Set("k", "set before the Welcome");
        connected.SetResult();
        await started.For();
        var connection = await Wait.First(connections);
        await Settle(client, connection);
        Assert.Equal("set before the Welcome", client.Session.Get<string>("k"));
        Assert.Equal("set before the Welcome", connection.Session.Get<string>("k"));
    }
}

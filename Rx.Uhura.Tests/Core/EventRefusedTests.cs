using System.Reactive.Linq;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// Native protocol, limits that differ between the two ends: the receiver cannot read one event the sender accepted. It
/// says which (Close with code 5 after acknowledging the events before it), so the sender fails that one send instead of
/// sending it on every new link forever, and the events after it still arrive once, in order, on the next link.
/// </summary>
public sealed class EventRefusedTests : IAsyncLifetime
{
    private static readonly ReconnectOptions Fast = new() { FirstDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(100) };
    private static readonly ConnectionOptions Strict = ConnectionOptions.Default with { MaxMessageSize = 64 * 1024, MaxJsonDepth = 8 };

    private UhuraServer _server = new();
    private readonly ReplaySubjectBox<Connection> _accepted = new();
    private readonly List<string> _received = [];
    private UhuraClient? _client;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        _client?.Dispose();
        await _server.CloseAsync().For();
    }

    private async Task<UhuraClient> StartAsync(ConnectionOptions server, ConnectionOptions client)
    {
        _server = new UhuraServer(new UhuraServerOptions { Connection = server });
        _server.Connections.Subscribe(_accepted.Subject);
        _server.Connections.Subscribe(c => c.Events.Subscribe(e =>
        {
            lock (_received)
            {
                _received.Add(e.Name);
            }
        }));
        await _server.ListenAsync("tcp://127.0.0.1:0");
        _client = UhuraClient.Connect(_server.Uri!, new UhuraClientOptions { Reconnect = Fast, Connection = client });
        await _client.WhenConnectedAsync().For();
        return _client;
    }

    private static JToken Nested(int depth)
    {
        JToken token = new JArray(1);
        for (var i = 1; i < depth; i++)
        {
            token = new JArray(token);
        }

        return token;
    }

    public static TheoryData<string> Unreadable => ["over the size limit", "over the depth limit"];

    private static object Make(string what) => what == "over the size limit" ? new string('x', 100_000) : Nested(12);

    [Theory]
    [MemberData(nameof(Unreadable))]
    public async Task An_event_the_server_cannot_read_fails_the_clients_send_once_and_the_events_after_it_arrive_on_the_next_link(string what)
    {
        var client = await StartAsync(Strict, ConnectionOptions.Default);
        await client.Send("before").For();

        var bad = client.Send("bad", Make(what));
        var after = client.Send("after");
        var last = client.Send("last");

        await Assert.ThrowsAsync<EncodeException>(() => bad.For());
        await after.For();
        await last.For();
        lock (_received)
        {
            Assert.Equal(["before", "after", "last"], _received);
        }

        await Wait.First(_accepted.Subject.Skip(1)); // the link the server ended, and the one after it: no resend loop
        await client.Send("still").For();
        Assert.Equal(ConnectionStatus.Connected, client.CurrentState.Status);
    }

    [Fact]
    public async Task An_event_the_client_cannot_read_fails_the_servers_send_once_and_the_events_after_it_arrive_after_the_resume()
    {
        var client = await StartAsync(ConnectionOptions.Default, Strict);
        var connection = await Wait.First(_accepted.Subject);
        var names = new List<string>();
        var gotLast = Wait.First(client.Event("last"));
        client.Events.Subscribe(e =>
        {
            lock (names)
            {
                names.Add(e.Name);
            }
        });

        var bad = connection.Send("bad", new string('x', 100_000));
        var after = connection.Send("after");
        var last = connection.Send("last");

        await Assert.ThrowsAsync<EncodeException>(() => bad.For());
        await gotLast;
        await after.For();
        await last.For();
        lock (names)
        {
            Assert.Equal(["after", "last"], names);
        }
    }
}

using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Session;

namespace Rx.Uhura.Tests.Core;

/// <summary>The scenarios of Node uhura's own test suite (basics, session), and more, over real sockets on port 0.</summary>
public abstract class ServerClientTests : IAsyncLifetime
{
    /// <summary>The wire the clients of this run speak (the server accepts both).</summary>
    protected abstract WireProtocol Protocol { get; }

    /// <summary>Where the server listens (the clients connect to its <see cref="UhuraServer.Uri"/>).</summary>
    protected virtual string ListenUri => "tcp://127.0.0.1:0";

    private readonly UhuraServer _server = new();
    private readonly List<UhuraClient> _clients = [];
    private readonly ReplaySubjectBox<Connection> _accepted = new();

    public async Task InitializeAsync()
    {
        _server.Connections.Subscribe(_accepted.Subject);
        await _server.ListenAsync(ListenUri);
    }

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        await _server.CloseAsync().For();
    }

    private UhuraClient Client(UhuraClientOptions? options = null)
    {
        var client = UhuraClient.Connect(_server.Uri!, (options ?? new UhuraClientOptions()) with { Protocol = Protocol });
        _clients.Add(client);
        return client;
    }

    private Task<Connection> NextConnection(int index = 0) => Wait.First(_accepted.Subject.Skip(index));

    [Fact]
    public async Task A_client_connects_to_the_server()
    {
        var client = Client();
        await client.WhenConnectedAsync().For();
        var connection = await NextConnection();
        Assert.True(connection.IsServer);
        Assert.Equal(ConnectionStatus.Connected, client.CurrentState.Status);
        Assert.False(client.CurrentState.Resumed);
    }

    [Fact]
    public async Task The_client_receives_server_events_with_their_arguments()
    {
        var client = Client();
        var received = Wait.First(client.Event("ping"));
        var connection = await NextConnection();
        await connection.Send("ping", 1, "two", new { three = 3 }).For();
        var e = await received;
        Assert.Equal(1, e.Arg<int>(0));
        Assert.Equal("two", e.Arg<string>(1));
        Assert.Equal(3, e.Args[2]["three"]!.Value<int>());
        Assert.NotNull(e.MessageId);
    }

    [Fact]
    public async Task The_server_receives_client_events()
    {
        var client = Client();
        var connection = await NextConnection();
        var received = Wait.First(connection.Event("ping"));
        await client.Send("ping", 42).For();
        Assert.Equal(42, (await received).Arg<int>(0));
    }

    [Fact]
    public async Task Sends_made_before_the_link_is_up_are_queued_and_arrive_in_order()
    {
        var values = new TaskCompletionSource<IList<int>>();
        _server.Connections.Subscribe(c => c.Event("n").Select(e => e.Arg<int>(0)).Take(100).ToList().Subscribe(values.SetResult));
        var client = Client();
        var sends = Enumerable.Range(0, 100).Select(i => client.Send("n", i)).ToArray();
        await Task.WhenAll(sends).For();
        Assert.Equal(Enumerable.Range(0, 100), await values.Task.For());
    }

    [Fact]
    public async Task A_send_completes_when_the_peer_acknowledges_it()
    {
        var client = Client();
        await client.Send("ping").For();
        var connection = await NextConnection();
        await connection.Send("pong").For();
    }

    [Fact]
    public async Task Ping_pong_keeps_going_for_many_round_trips()
    {
        _server.Connections.Subscribe(c => c.Event("ping").Subscribe(e => c.Send("pong", e.Args[0])));
        var client = Client();
        for (var i = 0; i < 200; i++)
        {
            var pong = Wait.First(client.Event("pong"));
            await client.Send("ping", i);
            Assert.Equal(i, (await pong).Arg<int>(0));
        }
    }

    [Fact]
    public async Task The_client_sees_the_link_end_when_the_server_destroys_the_socket()
    {
        var client = Client();
        await client.WhenConnectedAsync().For();
        var connection = await NextConnection();
        var closed = Wait.First(client.State, s => s.Status == ConnectionStatus.Closed);
        connection.Dispose();
        var state = await closed;
        Assert.Equal(DisconnectReason.RemoteClose, state.Disconnect?.Reason);
        Assert.Equal(DisconnectReason.LocalClose, (await Wait.First(connection.Disconnected)).Reason);
    }

    [Fact]
    public async Task Disconnect_flushes_a_one_mebibyte_argument_sent_just_before_it()
    {
        var received = new TaskCompletionSource<UhuraEvent>();
        _server.Connections.Subscribe(c => c.Event("ping").Subscribe(received.SetResult));
        var client = Client();
        await client.WhenConnectedAsync().For();
        var big = new string('.', 1 << 20);
        var send = client.Send("ping", big);
        await client.Disconnect().For();
        await send.For();
        Assert.Equal(big.Length, (await received.Task.For()).Arg<string>(0).Length);
    }

    [Fact]
    public async Task Disconnect_before_the_socket_is_open_still_delivers_what_was_queued()
    {
        // Subscribed before the client exists: it starts connecting at once, and the server may accept it before the
        // next line runs (a handler subscribed after that would never see this connection).
        var received = new TaskCompletionSource<UhuraEvent>();
        _server.Connections.Subscribe(c => c.Event("early").Subscribe(received.SetResult));
        var client = Client();
        var send = client.Send("early", "x");
        await client.Disconnect().For();
        await send.For();
        Assert.Equal("x", (await received.Task.For()).Arg<string>(0));
        Assert.Equal(ConnectionStatus.Closed, client.CurrentState.Status);
    }

    [Fact]
    public async Task Disconnect_overtaken_by_Dispose_ends_at_once_instead_of_waiting_for_the_close_timeout()
    {
        // A clock that never moves: a Disconnect that waited for its CloseTimeout would never end. Dispose aborts the link
        // while Disconnect's graceful close is under way, with events still buffered and never to be written.
        var frozen = new SchedulerTimeProvider(new Microsoft.Reactive.Testing.TestScheduler());
        var payload = new string('x', 1024);
        for (var trial = 0; trial < 20; trial++)
        {
            var client = Client(new UhuraClientOptions { Connection = ConnectionOptions.Default with { TimeProvider = frozen } });
            await client.WhenConnectedAsync().For();
            for (var i = 0; i < 2_000; i++)
            {
                client.Post("bulk", i, payload);
            }

            var closing = client.Disconnect();
            client.Dispose();
            await closing.For();
            Assert.Equal(ConnectionStatus.Closed, client.CurrentState.Status);
        }
    }

    [Fact]
    public async Task Sending_after_disconnect_fails_with_a_typed_error()
    {
        var client = Client();
        await client.Disconnect().For();
        var error = await Assert.ThrowsAsync<SendAfterCloseException>(() => client.Send("late"));
        Assert.Equal("late", error.EventName);
    }

    [Fact]
    public async Task Reserved_event_names_are_refused()
    {
        var client = Client();
        Assert.Throws<ArgumentException>(() => { _ = client.Send("_set"); });
        Assert.Throws<ArgumentException>(() => { _ = client.Send("ack::1"); });
        Assert.Throws<ArgumentException>(() => { _ = client.Send("connect"); });
        await client.Disconnect().For();
    }

    [Fact]
    public async Task An_argument_that_cannot_be_serialized_fails_the_send_with_an_encode_error()
    {
        var client = Client();
        var cyclic = new Cyclic();
        cyclic.Self = cyclic;
        await Assert.ThrowsAsync<EncodeException>(() => client.Send("bad", cyclic));
        await client.Send("good").For();
    }

    [Fact]
    public async Task A_converter_of_the_application_that_throws_fails_that_send_with_an_encode_error_and_the_link_carries_on()
    {
        var options = new UhuraClientOptions { Connection = ConnectionOptions.Default with { SerializerSettings = new Newtonsoft.Json.JsonSerializerSettings { Converters = [new ThrowingConverter()] } } };
        var client = Client(options);
        var error = await Assert.ThrowsAsync<EncodeException>(() => client.Send("bad", new Unwritable()));
        Assert.IsType<NullReferenceException>(error.InnerException);
        Assert.Throws<EncodeException>(() => client.Post("bad", new Unwritable()));
        await client.Send("good", "after").For();
        Assert.Equal(ConnectionStatus.Connected, client.CurrentState.Status);
    }

    [Fact]
    public async Task The_server_assigns_a_24_character_session_id()
    {
        var client = Client();
        await client.WhenConnectedAsync().For();
        var connection = await NextConnection();
        Assert.Matches("^[A-Za-z0-9]{24}$", client.Session.Id);
        Assert.Equal(client.Session.Id, connection.Session.Id);
    }

    [Fact]
    public async Task Session_changes_reach_the_client()
    {
        var client = Client();
        var connection = await NextConnection();
        var change = Wait.First(client.Session.Changes, c => c.Key == "foo");
        connection.Session.Set("foo", "bar");
        Assert.Equal(SessionChangeOrigin.Remote, (await change).Origin);
        Assert.Equal("bar", client.Session.Get<string>("foo"));
    }

    [Fact]
    public async Task Session_changes_reach_the_server_and_its_store()
    {
        var client = Client();
        var connection = await NextConnection();
        var change = Wait.First(connection.Session.Changes, c => c.Key == "foo");
        client.Session.Set("foo", new[] { 1, 2 });
        await change;
        Assert.Equal(new[] { 1, 2 }, connection.Session.Get<int[]>("foo"));
        await connection.Session.FlushAsync().For();
        var stored = await _server.SessionStore.GetAsync(connection.Session.Id!);
        Assert.Equal(new JArray(1, 2), stored!["foo"]);
    }

    [Fact]
    public async Task The_session_observable_replays_the_current_contents()
    {
        var client = Client();
        await client.WhenConnectedAsync().For();
        client.Session.Set("k", 1);
        var snapshot = await Wait.First(client.Session);
        Assert.Equal(1, snapshot["k"].Value<int>());
        Assert.True(snapshot.ContainsKey(UhuraSession.IdKey));
    }

    [Fact]
    public async Task The_session_id_cannot_be_set_by_the_application_on_either_side()
    {
        var client = Client();
        await client.WhenConnectedAsync().For();
        var id = client.Session.Id;
        Assert.Throws<ArgumentException>(() => client.Session.Set(UhuraSession.IdKey, "mine"));
        Assert.Throws<ArgumentException>(() => client.Session.Set([new KeyValuePair<string, object?>("a", 1), new(UhuraSession.IdKey, "mine")]));
        Assert.Equal(id, client.Session.Id);
        Assert.Null(client.Session.Get("a")); // all or nothing
        var serverSide = await NextConnection();
        Assert.Throws<ArgumentException>(() => serverSide.Session.Set(UhuraSession.IdKey, "mine"));
        Assert.Equal(id, serverSide.Session.Id);
    }

    [Fact]
    public async Task A_new_client_presenting_a_known_session_id_resumes_the_session()
    {
        var first = Client();
        await first.WhenConnectedAsync().For();
        var firstConnection = await NextConnection();
        first.Session.Set("foo", "bar");
        await Wait.First(firstConnection.Session, s => s.ContainsKey("foo"));
        firstConnection.Session.Set("fromServer", 7);
        await Wait.First(first.Session, s => s.ContainsKey("fromServer"));
        var saved = first.Session.Get();
        first.Dispose(); // the socket is destroyed
        await Wait.First(firstConnection.Disconnected);

        var second = Client(new UhuraClientOptions { InitialSession = saved });
        await second.WhenConnectedAsync().For();
        var secondConnection = await NextConnection(1);
        Assert.True(second.CurrentState.Resumed);
        Assert.True(secondConnection.Resumed);
        Assert.Equal(saved[UhuraSession.IdKey], second.Session.Get(UhuraSession.IdKey));
        Assert.Equal("bar", secondConnection.Session.Get<string>("foo"));
        Assert.Equal(7, second.Session.Get<int>("fromServer"));
    }

    [Fact]
    public async Task An_unknown_session_id_starts_a_new_session_and_keeps_the_clients_keys()
    {
        var client = Client(new UhuraClientOptions
        {
            InitialSession = new Dictionary<string, JToken> { [UhuraSession.IdKey] = "unknownunknownunknown123", ["k"] = "v" },
        });
        await client.WhenConnectedAsync().For();
        Assert.False(client.CurrentState.Resumed);
        Assert.NotEqual("unknownunknownunknown123", client.Session.Id);
        Assert.Equal("v", (await NextConnection()).Session.Get<string>("k"));
    }

    [Fact]
    public async Task A_client_presenting_an_unknown_id_learns_nothing_of_the_sessions_the_server_holds()
    {
        var owner = Client(new UhuraClientOptions { InitialSession = new Dictionary<string, JToken> { ["secret"] = "owner's" } });
        await owner.WhenConnectedAsync().For();
        var ownerConnection = await NextConnection();
        ownerConnection.Session.Set("serverSecret", 42);
        await ownerConnection.Session.FlushAsync().For();

        // A guess that is not the owner's id (one character changed) resumes nothing and sees nothing of it.
        var ownerId = owner.Session.Id!;
        var guess = ownerId[..^1] + (ownerId[^1] == 'a' ? 'b' : 'a');
        var stranger = Client(new UhuraClientOptions { InitialSession = new Dictionary<string, JToken> { [UhuraSession.IdKey] = guess } });
        await stranger.WhenConnectedAsync().For();
        var strangerConnection = await NextConnection(1);
        Assert.False(stranger.CurrentState.Resumed);
        Assert.NotEqual(guess, stranger.Session.Id);
        Assert.NotEqual(ownerId, stranger.Session.Id);
        Assert.Equal([UhuraSession.IdKey], stranger.Session.Get().Keys);
        Assert.Equal([UhuraSession.IdKey], strangerConnection.Session.Get().Keys);
        Assert.Null(await _server.SessionStore.GetAsync(guess));
    }

    [Fact]
    public async Task Invalidating_the_session_clears_it_on_the_client_and_drops_the_link()
    {
        var client = Client();
        await client.WhenConnectedAsync().For();
        var connection = await NextConnection();
        var id = connection.Session.Id!;
        var closed = Wait.First(client.State, s => s.Status == ConnectionStatus.Closed);
        await connection.InvalidateSession().For();
        var state = await closed;
        Assert.Equal(DisconnectReason.SessionInvalidated, state.Disconnect?.Reason);
        Assert.Null(client.Session.Id);
        Assert.Empty(client.Session.Get());
        Assert.Null(await _server.SessionStore.GetAsync(id));
    }

    [Fact]
    public async Task A_send_on_a_connection_whose_session_was_invalidated_fails_as_lost_and_never_waits_for_a_resume()
    {
        var client = Client();
        await client.WhenConnectedAsync().For();
        var connection = await NextConnection();
        await connection.InvalidateSession().For();
        // The session is gone: nothing can resume it, so the send cannot wait for it (on the native wire it followed
        // the session's stream and waited there for good).
        var error = await Record.ExceptionAsync(() => connection.Send("after", 1).For());
        Assert.True(error is ConnectionLostException or SendAfterCloseException, $"{error}");
    }

    [Fact]
    public async Task Disposing_a_client_completes_its_Session_and_the_server_links_Session_completes_when_the_link_ends()
    {
        var client = Client();
        await client.WhenConnectedAsync().For();
        var connection = await NextConnection();
        var clientSession = client.Session.Changes.DefaultIfEmpty().LastAsync().ToTask();
        var clientState = client.Session.LastAsync().ToTask();
        var serverSession = connection.Session.LastAsync().ToTask();
        await client.DisposeAsync();
        await clientSession.For();
        Assert.Equal(client.Session.Id, (await clientState.For())[UhuraSession.IdKey].ToString());
        await serverSession.For();
    }

    [Fact]
    public async Task A_subscriber_that_throws_does_not_break_the_connection()
    {
        var client = Client();
        var connection = await NextConnection();
        using var bad = connection.Event("boom").Subscribe(_ => throw new InvalidOperationException("user bug"));
        await client.Send("boom").For();
        var after = Wait.First(connection.Event("after"));
        await client.Send("after").For();
        await after;
    }

    [Fact]
    public async Task Closing_the_server_closes_every_connection_and_completes_its_streams()
    {
        var a = Client();
        var b = Client();
        await Task.WhenAll(a.WhenConnectedAsync(), b.WhenConnectedAsync()).For();
        var completed = _server.Connections.LastOrDefaultAsync().ToTask();
        var aClosed = Wait.First(a.State, s => s.Status == ConnectionStatus.Closed);
        var bClosed = Wait.First(b.State, s => s.Status == ConnectionStatus.Closed);
        await _server.CloseAsync().For();
        await completed.For();
        await Task.WhenAll(aClosed, bClosed);
        Assert.Empty(_server.ActiveConnections);
    }

    [Fact]
    public async Task Closing_the_server_drains_sends_in_flight_until_the_client_acknowledged_them()
    {
        var client = Client();
        var received = client.Event("n").Select((_, i) => i + 1).Replay(1);
        using var _ = received.Connect();
        await client.WhenConnectedAsync().For();
        var connection = await NextConnection();
        var sends = Enumerable.Range(0, 2000).Select(i => connection.Send("n", i, new string('x', 200))).ToList();
        await _server.CloseAsync().For(); // graceful: waits (up to CloseTimeout) for every ack before closing
        Assert.All(sends, send => Assert.True(send.IsCompletedSuccessfully, send.Exception?.ToString()));
        Assert.Equal(2000, await received.LastAsync().ToTask().For());
    }

    [Fact]
    public async Task Connecting_to_a_port_nobody_listens_on_fails_with_a_typed_error_and_closes_the_client()
    {
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        var port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();

        var client = UhuraClient.Connect($"tcp://127.0.0.1:{port}", new UhuraClientOptions { Protocol = Protocol });
        _clients.Add(client);
        var queued = client.Send("lost");
        var error = await Assert.ThrowsAsync<UhuraException>(() => client.WhenConnectedAsync().For());
        Assert.IsType<System.Net.Sockets.SocketException>(error.InnerException);
        // Queued before the failure: ConnectionLostException; made after it: SendAfterCloseException.
        await Assert.ThrowsAnyAsync<SendException>(() => queued.For());
        Assert.Equal(ConnectionStatus.Closed, client.CurrentState.Status);
        await Assert.ThrowsAsync<SendAfterCloseException>(() => client.Send("late"));
    }

    [Fact]
    public async Task A_late_subscriber_to_the_state_of_a_closed_client_gets_closed_then_completion()
    {
        var client = Client();
        await client.Disconnect().For();
        var states = await client.State.ToList().ToTask().For();
        Assert.Equal([ConnectionStatus.Closed], states.Select(s => s.Status));
    }

    [Fact]
    public async Task Listening_twice_is_an_error()
        => await Assert.ThrowsAsync<InvalidOperationException>(() => _server.ListenAsync("tcp://127.0.0.1:0"));

    [Fact]
    public async Task The_connection_events_stream_completes_when_the_link_ends()
    {
        var client = Client();
        var connection = await NextConnection();
        var completed = connection.Events.LastOrDefaultAsync().ToTask();
        await client.Disconnect().For();
        await completed.For();
        Assert.Equal(DisconnectReason.RemoteClose, (await Wait.First(connection.Disconnected)).Reason);
    }

    [Fact]
    public async Task Posted_events_arrive_in_order_and_a_later_send_confirms_them()
    {
        var client = Client();
        var connection = await NextConnection();
        var received = connection.Event("n").Select(e => e.Arg<int>(0)).Take(1000).ToList().ToTask();
        for (var i = 0; i < 999; i++)
        {
            Assert.True(client.Post("n", i));
        }

        await client.Send("n", 999).For();
        Assert.Equal(Enumerable.Range(0, 1000), await received.For());
    }

    [Fact]
    public async Task A_connection_confirms_its_posted_events_with_WhenAcknowledgedAsync()
    {
        var client = Client();
        var connection = await NextConnection();
        var received = client.Event("n").Take(500).Count().ToTask();
        for (var i = 0; i < 500; i++)
        {
            Assert.True(connection.Post("n", i, "x"));
        }

        await connection.WhenAcknowledgedAsync().For();
        Assert.Equal(500, await received.For());
    }

    [Fact]
    public async Task Post_after_close_is_refused_and_reported_by_its_return_value_only()
    {
        var client = Client();
        var connection = await NextConnection();
        var dropped = client.Dropped.ToList().ToTask();
        await client.Disconnect().For();
        Assert.False(client.Post("late"));
        await connection.CloseAsync().For();
        // Native protocol: a server's send after the link closed follows the session (held for the client's resume).
        Assert.Equal(Protocol == WireProtocol.Native, connection.Post("late"));
        Assert.Empty(await dropped.For());
        Assert.Throws<ArgumentException>(() => client.Post("_set"));
        var loop = new Cyclic();
        loop.Self = loop;
        Assert.Throws<EncodeException>(() => client.Post("x", loop));
    }

    [Fact]
    public async Task Broadcast_reaches_every_client_with_the_same_arguments_whatever_its_wire()
    {
        var clients = Enumerable.Range(0, 4).Select(_ => Client()).ToList();
        var other = UhuraClient.Connect(_server.Uri!, new UhuraClientOptions { Protocol = Protocol == WireProtocol.Native ? WireProtocol.NodeUhura : WireProtocol.Native });
        _clients.Add(other);
        clients.Add(other);
        var gets = clients.Select(c => c.Event("news").Select(e => (e.Arg<int>(0), e.Arg<string>(1))).Take(3).ToList().ToTask()).ToList();
        foreach (var client in clients)
        {
            await client.WhenConnectedAsync().For();
        }

        await NextConnection(4);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(5, _server.Broadcast("news", i, "héllo \\"));
        }

        foreach (var get in gets)
        {
            Assert.Equal([(0, "héllo \\"), (1, "héllo \\"), (2, "héllo \\")], await get.For());
        }
    }

    private sealed class Cyclic
    {
        public Cyclic? Self { get; set; }
    }

    private sealed class Unwritable;

    private sealed class ThrowingConverter : Newtonsoft.Json.JsonConverter<Unwritable>
    {
        public override void WriteJson(Newtonsoft.Json.JsonWriter writer, Unwritable? value, Newtonsoft.Json.JsonSerializer serializer)
            => throw new NullReferenceException("the application's converter failed");

        public override Unwritable ReadJson(Newtonsoft.Json.JsonReader reader, Type objectType, Unwritable? existingValue, bool hasExistingValue, Newtonsoft.Json.JsonSerializer serializer)
            => throw new NotSupportedException();
    }
}

public sealed class ServerClientTestsOverTheNativeProtocol : ServerClientTests
{
    protected override WireProtocol Protocol => WireProtocol.Native;
}

public sealed class ServerClientTestsOverTheNodeUhuraWire : ServerClientTests
{
    protected override WireProtocol Protocol => WireProtocol.NodeUhura;
}

/// <summary>Records every connection so tests can wait for the n-th one whenever they like.</summary>
internal sealed class ReplaySubjectBox<T>
{
    public System.Reactive.Subjects.ReplaySubject<T> Subject { get; } = new();
}

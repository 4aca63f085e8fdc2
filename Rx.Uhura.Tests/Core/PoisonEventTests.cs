using System.Reactive.Linq;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Session;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// Events the peer cannot accept (a frame over the size limit, JSON that is not strict, nesting over the depth limit)
/// are refused where they are sent, with a typed error: nothing reaches the wire, the link stays up, and what is sent
/// next is delivered. Sent, such an event ends the link and is resent on every new one.
/// </summary>
public abstract class PoisonEventTests : IAsyncLifetime
{
    private const int Limit = 1 << 20;

    /// <summary>The wire the client of this run speaks (the server accepts both).</summary>
    protected abstract WireProtocol Protocol { get; }

    private static readonly ConnectionOptions Limits = ConnectionOptions.Default with { MaxMessageSize = Limit };

    private readonly UhuraServer _server = new(new UhuraServerOptions { Connection = Limits });
    private readonly ReplaySubjectBox<Connection> _accepted = new();
    private readonly System.Collections.Concurrent.ConcurrentQueue<Exception> _errors = new();
    private UhuraClient? _client;

    public async Task InitializeAsync()
    {
        _server.Connections.Subscribe(_accepted.Subject);
        _server.Errors.Subscribe(_errors.Enqueue);
        await _server.ListenAsync("tcp://127.0.0.1:0");
    }

    public async Task DisposeAsync()
    {
        _client?.Dispose();
        await _server.CloseAsync().For();
    }

    private async Task<(UhuraClient Client, Connection Connection)> ConnectAsync(JsonSerializerSettings? settings = null)
    {
        _client = UhuraClient.Connect(_server.Uri!, new UhuraClientOptions { Protocol = Protocol, Connection = Limits with { SerializerSettings = settings } });
        await _client.WhenConnectedAsync().For();
        return (_client, await Wait.First(_accepted.Subject));
    }

    /// <summary>The link is the one it was, and the next event each way is the harmless one sent after the refused one.</summary>
    private async Task AssertTheLinkCarriesOn(UhuraClient client, Connection connection)
    {
        var link = client.Connection;
        var atServer = Wait.First(connection.Events);
        await client.Send("after", 1).For();
        Assert.Equal("after", (await atServer).Name);

        var atClient = Wait.First(client.Events);
        await connection.Send("after", 2).For();
        Assert.Equal("after", (await atClient).Name);

        Assert.Same(link, client.Connection);
        Assert.True(connection.IsConnected);
        Assert.Equal(ConnectionStatus.Connected, client.CurrentState.Status);
        Assert.Empty(_errors);
    }

    private static string Oversized() => new('x', 20 * 1024 * 1024);

    [Fact]
    public async Task A_20_MiB_string_fails_the_clients_Send_and_Post_with_FrameTooLarge_and_the_link_stays_up()
    {
        var (client, connection) = await ConnectAsync();
        var big = Oversized();

        var error = await Assert.ThrowsAsync<FrameTooLargeException>(() => client.Send("big", big).For());
        Assert.Equal(Limit, error.Limit);
        Assert.Throws<FrameTooLargeException>(() => client.Post("big", big));

        await AssertTheLinkCarriesOn(client, connection);
    }

    [Fact]
    public async Task A_20_MiB_string_fails_the_servers_Send_Broadcast_and_SendTo_with_FrameTooLarge_and_the_link_stays_up()
    {
        var (client, connection) = await ConnectAsync();
        var big = Oversized();

        await Assert.ThrowsAsync<FrameTooLargeException>(() => connection.Send("big", big).For());
        Assert.Throws<FrameTooLargeException>(() => connection.Post("big", big));
        Assert.Throws<FrameTooLargeException>(() => _server.Broadcast("big", big));
        await Assert.ThrowsAsync<FrameTooLargeException>(() => _server.SendTo(connection.Id, "big", big).For());

        await AssertTheLinkCarriesOn(client, connection);
    }

    [Fact]
    public async Task A_name_longer_than_the_native_wire_carries_is_refused_on_that_wire_at_both_ends_and_delivered_on_the_node_wire()
    {
        var (client, connection) = await ConnectAsync();
        var name = new string('n', ushort.MaxValue + 1);
        if (Protocol == WireProtocol.Native)
        {
            // Refused before it took a sequence number: the next event is not a gap that ends the link.
            await Assert.ThrowsAsync<EncodeException>(() => client.Send(name, 1).For());
            Assert.Throws<EncodeException>(() => client.Post(name, 1));
            await Assert.ThrowsAsync<EncodeException>(() => connection.Send(name, 1).For());
            Assert.Throws<EncodeException>(() => connection.Post(name, 1));
            Assert.Throws<EncodeException>(() => _server.Broadcast(name, 1)); // the server speaks both wires
            await AssertTheLinkCarriesOn(client, connection);
        }
        else
        {
            var received = Wait.First(connection.Events);
            await client.Send(name, 1).For();
            Assert.Equal(name, (await received).Name);
        }
    }

    [Fact]
    public async Task An_event_just_under_the_limit_is_still_delivered()
    {
        var (client, connection) = await ConnectAsync();
        var received = Wait.First(connection.Events);
        await client.Send("fits", new string('x', Limit - 256)).For();
        Assert.Equal(Limit - 256, (await received).Arg<string>(0)!.Length);
    }

    public static TheoryData<string> Unencodable => ["undefined", "undefined inside an object", "NaN as a symbol", "Infinity as a symbol", "too deep", .. Absurd];

    /// <summary>The values that are unencodable whatever the serializer settings (the server's settings are its own).</summary>
    public static TheoryData<string> UnencodableAlways => ["undefined", "undefined inside an object", "too deep", .. Absurd];

    /// <summary>
    /// What a hostile or careless caller passes: nesting 100,000 levels deep (serialized recursively, it overflowed the
    /// stack and ended the process), a reference loop, and a task never awaited (serialized, its <c>Result</c> blocked
    /// the sender for ever).
    /// </summary>
    private static readonly string[] Absurd = ["objects 100,000 deep", "tokens 100,000 deep", "a reference loop", "a task never completed", "a pending ValueTask"];

    /// <summary>Each value is written by Newtonsoft as something that is not JSON, or nests deeper than the peer reads.</summary>
    private static (object? Value, JsonSerializerSettings? Settings) Make(string what) => what switch
    {
        "undefined" => (JValue.CreateUndefined(), null),
        "undefined inside an object" => (new JObject { ["a"] = 1, ["b"] = JValue.CreateUndefined() }, null),
        "NaN as a symbol" => (new[] { double.NaN }, new JsonSerializerSettings { FloatFormatHandling = FloatFormatHandling.Symbol }),
        "Infinity as a symbol" => (new { x = double.PositiveInfinity }, new JsonSerializerSettings { FloatFormatHandling = FloatFormatHandling.Symbol }),
        "too deep" => (Nested(ConnectionOptions.Default.MaxJsonDepth), null),
        "objects 100,000 deep" => (Chain.Deep(100_000), null),
        "tokens 100,000 deep" => (Nested(100_000), null),
        "a reference loop" => (Chain.Loop(), null),
        "a task never completed" => (new TaskCompletionSource<int>().Task, null),
        "a pending ValueTask" => (new ValueTask<int>(new TaskCompletionSource<int>().Task), null),
        _ => throw new ArgumentOutOfRangeException(nameof(what)),
    };

    private static JToken Nested(int depth)
    {
        JToken token = new JArray(1);
        for (var i = 1; i < depth; i++)
        {
            token = new JArray(token);
        }

        return token;
    }

    [Theory]
    [MemberData(nameof(Unencodable))]
    public async Task An_unencodable_value_fails_the_clients_Send_and_Post_with_an_encode_error_and_nothing_reaches_the_wire(string what)
    {
        var (value, settings) = Make(what);
        var (client, connection) = await ConnectAsync(settings);

        await Assert.ThrowsAsync<EncodeException>(() => client.Send("bad", value).For());
        Assert.Throws<EncodeException>(() => client.Post("bad", value));

        await AssertTheLinkCarriesOn(client, connection);
    }

    [Theory]
    [MemberData(nameof(UnencodableAlways))]
    public async Task An_unencodable_value_fails_the_servers_Send_Broadcast_and_SendTo_with_an_encode_error(string what)
    {
        var (value, _) = Make(what);
        var (client, connection) = await ConnectAsync();

        await Assert.ThrowsAsync<EncodeException>(() => connection.Send("bad", value).For());
        Assert.Throws<EncodeException>(() => connection.Post("bad", value));
        Assert.Throws<EncodeException>(() => _server.Broadcast("bad", value));
        await Assert.ThrowsAsync<EncodeException>(() => _server.SendTo(connection.Id, "bad", value).For());

        await AssertTheLinkCarriesOn(client, connection);
    }

    /// <summary>The unencodable values, and one whose serialization throws (the application's getter).</summary>
    public static TheoryData<string> UnencodableSessionValues => ["undefined", "undefined inside an object", "too deep", "a getter that throws", .. Absurd];

    private static (object? Value, JsonSerializerSettings? Settings) MakeSessionValue(string what) => what switch
    {
        "a getter that throws" => (new Thrower(), null),
        "too deep" => (Nested(ConnectionOptions.Default.MaxJsonDepth - 1), null), // the wire adds two levels around it
        _ => Make(what),
    };

    /// <summary>A linked list: as deep as it is long.</summary>
    private sealed class Chain
    {
        public Chain? Next { get; set; }

        public static Chain Deep(int depth)
        {
            var head = new Chain();
            for (var i = 1; i < depth; i++)
            {
                head = new Chain { Next = head };
            }

            return head;
        }

        public static Chain Loop()
        {
            var chain = new Chain();
            chain.Next = chain;
            return chain;
        }
    }

    [Theory]
    [InlineData("undefined")]
    [InlineData("too deep")]
    [InlineData("tokens 100,000 deep")]
    public async Task An_initial_session_the_peer_could_not_read_fails_the_clients_creation_not_every_handshake(string what)
    {
        var token = (JToken)MakeSessionValue(what).Value!;
        var options = new UhuraClientOptions { Protocol = Protocol, Connection = Limits, InitialSession = new Dictionary<string, JToken> { ["fine"] = 1, ["bad"] = token } };
        Assert.Throws<EncodeException>(() => UhuraClient.Connect(_server.Uri!, options));

        var big = new UhuraClientOptions { Protocol = Protocol, Connection = Limits, InitialSession = new Dictionary<string, JToken> { ["big"] = new string('x', Limit) } };
        Assert.Throws<FrameTooLargeException>(() => UhuraClient.Connect(_server.Uri!, big));

        var (client, connection) = await ConnectAsync(); // the server never saw the refused ones
        await AssertTheLinkCarriesOn(client, connection);
    }

    private sealed class Thrower
    {
        public int Value => throw new NullReferenceException("the application's bug");
    }

    /// <summary>A later change of <paramref name="from"/>'s session reaches <paramref name="to"/> (changes arrive in order, so what was refused before it never will).</summary>
    private static async Task AssertTheNextChangeArrives(UhuraSession from, UhuraSession to, int value = 1)
    {
        var arrived = Wait.First(to.Changes, c => c.Key == "good" && c.Origin == SessionChangeOrigin.Remote);
        from.Set("good", value);
        Assert.Equal(value, (int)(await arrived).Value!);
    }

    [Theory]
    [MemberData(nameof(UnencodableSessionValues))]
    public async Task A_session_value_the_peer_cannot_read_is_refused_by_Set_with_nothing_applied_or_sent_and_the_link_stays_up(string what)
    {
        var (value, settings) = MakeSessionValue(what);
        var (client, connection) = await ConnectAsync(settings);

        var error = Assert.Throws<EncodeException>(() => client.Session.Set("bad", value));
        Assert.Equal("_set", error.EventName);
        Assert.Contains("'bad'", error.Message, StringComparison.Ordinal);
        Assert.Throws<EncodeException>(() => client.Session.Set([new("fine", 1), new("bad", value)])); // all or none
        Assert.Throws<EncodeException>(() => connection.Session.Set("bad", value));

        Assert.Null(client.Session.Get("bad"));
        Assert.Null(client.Session.Get("fine"));
        await AssertTheNextChangeArrives(client.Session, connection.Session);
        await AssertTheNextChangeArrives(connection.Session, client.Session, 2);
        Assert.Null(connection.Session.Get("bad"));
        Assert.Null(connection.Session.Get("fine"));
        await AssertTheLinkCarriesOn(client, connection);
    }

    [Fact]
    public async Task A_session_change_past_the_message_or_session_limits_is_refused_by_Set_and_the_link_stays_up()
    {
        var (client, connection) = await ConnectAsync();

        // One value over the message size; then a session that would outgrow MaxSessionBytes (1 MiB by default) in
        // two changes that each fit; then more keys than MaxSessionKeys in one Set.
        Assert.Equal(Limit, Assert.Throws<FrameTooLargeException>(() => client.Session.Set("big", new string('x', Limit))).Limit);
        client.Session.Set("half", new string('x', Limit / 2));
        var overBytes = Assert.Throws<SessionLimitException>(() => client.Session.Set("other half", new string('x', Limit / 2)));
        Assert.Equal(ConnectionOptions.Default.MaxSessionBytes, overBytes.Limit);
        client.Session.Set([new("twice", new string('x', Limit / 2)), new("twice", 1)]); // a key given twice counts as its last value
        Assert.Equal(1, client.Session.Get<int>("twice"));
        var many = Enumerable.Range(0, ConnectionOptions.Default.MaxSessionKeys).Select(i => new KeyValuePair<string, object?>($"k{i}", i));
        var overKeys = Assert.Throws<SessionLimitException>(() => client.Session.Set(many));
        Assert.Equal(ConnectionOptions.Default.MaxSessionKeys, overKeys.Limit);
        Assert.Throws<SessionLimitException>(() => connection.Session.Set(many)); // the server's side refuses as well

        await AssertTheNextChangeArrives(client.Session, connection.Session);
        Assert.Equal(Limit / 2, connection.Session.Get<string>("half")!.Length);
        Assert.Null(connection.Session.Get("other half"));
        Assert.Null(connection.Session.Get("k0"));
        Assert.Null(client.Session.Get("k0"));

        // Once the peer's change made room, the same change fits (the sizes are counted again after remote changes).
        var removed = Wait.First(client.Session.Changes, c => c.Key == "half");
        connection.Session.Set("half", null);
        await removed;
        client.Session.Set("other half", new string('x', Limit / 2));
        await AssertTheLinkCarriesOn(client, connection);
    }

    [Fact]
    public async Task Nesting_one_level_under_the_depth_limit_is_delivered_on_either_wire()
    {
        var (client, connection) = await ConnectAsync();
        var received = Wait.First(connection.Events);
        await client.Send("deep", Nested(ConnectionOptions.Default.MaxJsonDepth - 2)).For();
        Assert.Equal("deep", (await received).Name);
    }

    [Fact]
    public async Task Dates_and_non_finite_doubles_are_sent_as_json_strings_that_any_peer_reads()
    {
        var (client, connection) = await ConnectAsync();
        var received = Wait.First(connection.Events);
        var when = new DateTime(2026, 12, 2, 17, 0, 0, DateTimeKind.Utc);
        await client.Send("values", when, new DateTimeOffset(when), double.NaN, double.NegativeInfinity, new JValue(double.PositiveInfinity)).For();
        var e = await received;
        Assert.Equal("2026-12-02T17:00:00Z", e.Args[0].Value<string>());
        Assert.Equal("2026-12-02T17:00:00+00:00", e.Args[1].Value<string>());
        Assert.Equal(["NaN", "-Infinity", "Infinity"], e.Args.Skip(2).Select(a => a.Value<string>()));
    }
}

public sealed class PoisonEventTestsOverTheNativeProtocol : PoisonEventTests
{
    protected override WireProtocol Protocol => WireProtocol.Native;
}

public sealed class PoisonEventTestsOverTheNodeUhuraWire : PoisonEventTests
{
    protected override WireProtocol Protocol => WireProtocol.NodeUhura;
}

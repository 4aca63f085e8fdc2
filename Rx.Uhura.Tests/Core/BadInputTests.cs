using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Text;

namespace Rx.Uhura.Tests.Core;

/// <summary>Bad input closes only the connection that sent it, with a typed error; the server and the others go on.</summary>
public sealed class BadInputTests : IAsyncLifetime
{
    private readonly UhuraServer _server = new(new UhuraServerOptions
    {
        Connection = ConnectionOptions.Default with { MaxMessageSize = 4096 },
    });

    private readonly ReplaySubject<UhuraException> _errors = new();
    private readonly ReplaySubject<Connection> _connections = new();

    public async Task InitializeAsync()
    {
        _server.Errors.Subscribe(_errors);
        _server.Connections.Subscribe(_connections);
        await _server.ListenAsync("tcp://127.0.0.1:0");
    }

    public async Task DisposeAsync() => await _server.CloseAsync().For();

    /// <summary>Sends <paramref name="bad"/> on one raw connection and checks the typed error, the close, and a healthy neighbour.</summary>
    private async Task<TError> AssertRejected<TError>(Func<RawPeer, Task> sendBad)
        where TError : UhuraException
    {
        await using var healthy = await UhuraClient.ConnectAsync(_server.Uri!).For();
        await using var bad = await RawPeer.ConnectAsync(_server.EndPoint!);

        await sendBad(bad);
        var error = await Wait.First(_errors.OfType<TError>());
        Assert.NotNull(error.ConnectionId);
        await bad.ReadToEndAsync(); // the server closed that socket

        // The neighbour still works, both ways.
        var healthyServerSide = await Wait.First(_connections);
        var echoed = Wait.First(healthy.Event("still"));
        var got = Wait.First(healthyServerSide.Event("alive"));
        await healthy.Send("alive").For();
        await got;
        await healthyServerSide.Send("still").For();
        await echoed;

        // And the server still accepts.
        await using var later = await UhuraClient.ConnectAsync(_server.Uri!).For();
        return error;
    }

    [Fact]
    public async Task Malformed_json_closes_only_that_connection_with_a_decode_error()
    {
        var error = await AssertRejected<DecodeException>(async peer =>
        {
            await peer.HandshakeAsync();
            await peer.WriteAsync("\n,\n[\"ping\", tru]\n");
        });
        Assert.Contains("tru", error.RawData);
    }

    [Fact]
    public async Task A_stray_dot_after_the_handshake_is_a_decode_error()
        => await AssertRejected<DecodeException>(async peer =>
        {
            await peer.HandshakeAsync();
            await peer.WriteAsync(".");
        });

    [Fact]
    public async Task A_stream_that_is_not_a_json_array_is_a_decode_error()
    {
        var error = await AssertRejected<DecodeException>(peer => peer.WriteAsync("{\"hello\":1}"));
        Assert.Contains("'{'", error.Message);
    }

    [Fact]
    public async Task An_element_over_the_size_limit_is_a_frame_too_large_error()
    {
        var error = await AssertRejected<FrameTooLargeException>(async peer =>
        {
            await peer.HandshakeAsync();
            await peer.WriteAsync("\n,\n[\"big\",\"" + new string('x', 10_000));
        });
        Assert.Equal(4096, error.Limit);
    }

    [Fact]
    public async Task An_unknown_internal_event_is_a_protocol_error()
    {
        var error = await AssertRejected<ProtocolException>(async peer =>
        {
            await peer.HandshakeAsync();
            await peer.WriteAsync("\n,\n[\"_explode\",1]");
        });
        Assert.Contains("_explode", error.Message);
    }

    [Fact]
    public async Task An_event_before_the_handshake_is_a_protocol_error()
        => await AssertRejected<ProtocolException>(peer => peer.WriteAsync("[\n[\"ping\"]"));

    [Fact]
    public async Task A_set_with_the_wrong_arguments_is_a_protocol_error()
        => await AssertRejected<ProtocolException>(async peer =>
        {
            await peer.HandshakeAsync();
            await peer.WriteAsync("\n,\n[\"_set\",5]");
        });

    [Fact]
    public async Task A_message_without_an_event_name_is_a_protocol_error()
        => await AssertRejected<ProtocolException>(async peer =>
        {
            await peer.HandshakeAsync();
            await peer.WriteAsync("\n,\n{\"args\":[1,2]}");
        });

    [Fact]
    public async Task Invalid_utf8_is_a_decode_error()
        => await AssertRejected<DecodeException>(async peer =>
        {
            await peer.HandshakeAsync();
            await peer.WriteAsync([(byte)',', (byte)'[', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)']']);
        });

    [Fact]
    public async Task The_rejected_connection_reports_the_error_on_its_own_disconnected_stream()
    {
        await using var peer = await RawPeer.ConnectAsync(_server.EndPoint!);
        await peer.HandshakeAsync();
        var connection = await Wait.First(_connections);
        await peer.WriteAsync("\n,\n[\"_bogus\"]");
        var info = await Wait.First(connection.Disconnected);
        Assert.Equal(DisconnectReason.ProtocolError, info.Reason);
        Assert.IsType<ProtocolException>(info.Error);
    }

    [Fact]
    public async Task A_peer_that_hangs_up_mid_message_is_a_plain_disconnect()
    {
        await using var peer = await RawPeer.ConnectAsync(_server.EndPoint!);
        await peer.HandshakeAsync();
        var connection = await Wait.First(_connections);
        await peer.ReadUntilAsync("\"connect\"");
        await peer.WriteAsync("\n,\n[\"half");
        peer.HangUp();
        Assert.Equal(DisconnectReason.RemoteClose, (await Wait.First(connection.Disconnected)).Reason);
    }

    [Fact]
    public async Task The_server_answers_a_raw_handshake_exactly_as_node_uhura_does()
    {
        await using var peer = await RawPeer.ConnectAsync(_server.EndPoint!);
        await peer.HandshakeAsync("{\"k\":1}");
        await peer.ReadUntilAsync("\"connect\"");
        var elements = peer.Elements();
        Assert.Equal("_set", (string)elements[0][0]!);
        Assert.Equal("sessionID", (string)elements[0][1]!);
        Assert.Matches("^[A-Za-z0-9]{24}$", (string)elements[0][2]!);
        Assert.Equal("connect", (string)elements[1]["args"]![0]!);
        Assert.True((bool)elements[1]["args"]![1]!["enableAcks"]!);
        Assert.NotNull(elements[1]["id"]);

        // Object-form messages with an id are acknowledged.
        await peer.WriteAsync("\n,\n{\"args\":[\"ping\"],\"id\":\"abc\"}");
        await peer.ReadUntilAsync("ack::abc");
        Assert.StartsWith("[\n", Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(peer.Elements().Count > 0 ? "[\n" : string.Empty)));
    }

    [Fact]
    public async Task A_client_that_renames_its_session_is_ignored_and_reported_and_its_link_and_other_keys_go_on()
    {
        await using var peer = await RawPeer.ConnectAsync(_server.EndPoint!);
        await peer.HandshakeAsync("{\"k\":1}");
        var connection = await Wait.First(_connections);
        await peer.ReadUntilAsync("\"connect\"");
        var id = connection.Session.Id;
        Assert.NotNull(id);

        await peer.WriteAsync("\n,\n[\"_set\",\"sessionID\",\"someone-elses-session-id\"]");
        await peer.WriteAsync("\n,\n[\"_set\",{\"sessionID\":\"another-one\",\"k\":2},null]");
        await Wait.First(connection.Session, s => s.TryGetValue("k", out var k) && (int)k == 2);
        var errors = await Wait.First(_errors.OfType<ProtocolException>().Take(2).ToList());
        Assert.All(errors, e => Assert.Contains("sessionID", e.Message));
        Assert.Equal(id, connection.Session.Id);
        Assert.True(connection.IsConnected);
        Assert.Equal(id, (string?)(await _server.SessionStore.GetAsync(id!))![Rx.Uhura.Session.UhuraSession.IdKey]);
    }
}

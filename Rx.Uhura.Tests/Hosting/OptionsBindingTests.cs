using Microsoft.Extensions.Configuration;

namespace Rx.Uhura.Tests.Hosting;

/// <summary>The options records bind from configuration with the ordinary <see cref="ConfigurationBinder"/>.</summary>
public sealed class OptionsBindingTests
{
    private static IConfiguration Configuration(params (string Key, string Value)[] values)
        => new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    [Fact]
    public void Server_options_bind_from_a_section()
    {
        var configuration = Configuration(
            ("Uhura:Server:SessionTimeToLive", "00:30:00"),
            ("Uhura:Server:AcceptNodeUhura", "false"),
            ("Uhura:Server:Connection:MaxMessageSize", "1048576"),
            ("Uhura:Server:Connection:SlowConsumerPolicy", "Disconnect"),
            ("Uhura:Server:Connection:HeartbeatInterval", "00:00:05"),
            ("Uhura:Server:Connection:HandshakeTimeout", "00:00:02"),
            ("Uhura:Server:Connection:EnableAcks", "false"));

        var options = configuration.GetSection("Uhura:Server").Get<UhuraServerOptions>()!;

        Assert.Equal(TimeSpan.FromMinutes(30), options.SessionTimeToLive);
        Assert.False(options.AcceptNodeUhura);
        Assert.True(options.AcceptNative);
        Assert.Equal(1024 * 1024, options.Connection.MaxMessageSize);
        Assert.Equal(SlowConsumerPolicy.Disconnect, options.Connection.SlowConsumerPolicy);
        Assert.Equal(TimeSpan.FromSeconds(5), options.Connection.HeartbeatInterval);
        Assert.Equal(TimeSpan.FromSeconds(2), options.Connection.HandshakeTimeout);
        Assert.False(options.Connection.EnableAcks);
        Assert.Equal(UhuraDefaults.MaxQueuedMessages, options.Connection.MaxQueuedMessages); // untouched keys keep their defaults
        Assert.Same(TimeProvider.System, options.Connection.TimeProvider);
        Assert.Null(options.SessionStore);
        using var server = new UhuraServer(options); // and they validate
    }

    [Fact]
    public void Client_options_bind_from_a_section_reconnect_included()
    {
        var configuration = Configuration(
            ("Uhura:Client:Protocol", "NodeUhura"),
            ("Uhura:Client:ConnectTimeout", "00:00:03"),
            ("Uhura:Client:AuthToken", "secret"),
            ("Uhura:Client:QueueFullPolicy", "DropOldest"),
            ("Uhura:Client:Reconnect:FirstDelay", "00:00:00.250"),
            ("Uhura:Client:Reconnect:MaxDelay", "00:00:10"),
            ("Uhura:Client:Reconnect:MaxAttempts", "7"),
            ("Uhura:Client:Reconnect:Backoff", "Constant"),
            ("Uhura:Client:Connection:MaxQueuedMessages", "50"));

        var options = configuration.GetSection("Uhura:Client").Get<UhuraClientOptions>()!;

        Assert.Equal(WireProtocol.NodeUhura, options.Protocol);
        Assert.Equal(TimeSpan.FromSeconds(3), options.ConnectTimeout);
        Assert.Equal("secret", options.AuthToken);
        Assert.Equal(QueueFullPolicy.DropOldest, options.QueueFullPolicy);
        Assert.NotNull(options.Reconnect);
        Assert.Equal(TimeSpan.FromMilliseconds(250), options.Reconnect.FirstDelay);
        Assert.Equal(TimeSpan.FromSeconds(10), options.Reconnect.MaxDelay);
        Assert.Equal(7, options.Reconnect.MaxAttempts);
        Assert.Equal(ReconnectBackoff.Constant, options.Reconnect.Backoff);
        Assert.True(options.Reconnect.UseJitter);
        Assert.Equal(50, options.Connection.MaxQueuedMessages);
    }

    [Fact]
    public void Binding_never_changes_the_shared_defaults()
    {
        var configuration = Configuration(("Connection:MaxMessageSize", "4096"), ("Connection:MaxQueuedMessages", "3"));

        var server = configuration.Get<UhuraServerOptions>()!;
        var client = configuration.Get<UhuraClientOptions>()!;

        Assert.Equal(4096, server.Connection.MaxMessageSize);
        Assert.Equal(3, client.Connection.MaxQueuedMessages);
        Assert.Equal(UhuraDefaults.MaxMessageSize, ConnectionOptions.Default.MaxMessageSize);
        Assert.Equal(UhuraDefaults.MaxQueuedMessages, ConnectionOptions.Default.MaxQueuedMessages);
        Assert.Equal(UhuraDefaults.MaxMessageSize, UhuraServerOptions.Default.Connection.MaxMessageSize);
        Assert.Equal(UhuraDefaults.MaxQueuedMessages, UhuraClientOptions.Default.Connection.MaxQueuedMessages);
        Assert.Equal(new UhuraServerOptions().Connection, ConnectionOptions.Default); // a fresh instance, equal to the defaults
    }
}

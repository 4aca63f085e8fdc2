using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Rx.Uhura;
using Rx.Uhura.Hosting;
using Rx.Uhura.Session;
using Rx.Uhura.Transport;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Registers an Rx.Uhura server or client with dependency injection and the generic host, the way <c>AddSignalR</c>
/// registers a hub server: a singleton built from options bound from configuration, started and stopped by a hosted
/// service. The <see cref="ILoggerFactory"/>, the <see cref="TimeProvider"/> and an <see cref="ISessionStore"/> registered
/// in the container are used; anything else that configuration cannot hold is set with
/// <see cref="UhuraServerBuilder.Configure(Func{UhuraServerOptions, UhuraServerOptions})"/>.
/// </summary>
public static class UhuraServiceCollectionExtensions
{
    /// <summary>
    /// Registers a <see cref="UhuraServer"/> singleton configured from <paramref name="configuration"/> (a section such as
    /// <c>Uhura:Server</c>: <c>Endpoint</c> and the keys of <see cref="UhuraServerOptions"/>, e.g.
    /// <c>Connection:MaxMessageSize</c>, <c>SessionTimeToLive</c>), and a hosted service that listens when the host
    /// starts and closes the server when it stops.
    /// </summary>
    /// <exception cref="InvalidOperationException">A Uhura server was already added.</exception>
    public static UhuraServerBuilder AddUhuraServer(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var builder = AddServerCore(services);
        services.AddOptions<UhuraServerOptions>().Bind(configuration);
        services.AddOptions<UhuraServerHostOptions>().Bind(configuration);
        return builder;
    }

    /// <summary>
    /// Registers a <see cref="UhuraServer"/> singleton listening on <paramref name="endpoint"/>
    /// (<c>tcp://HOST:PORT</c>, <c>unix:///PATH</c>, ...) with the options <paramref name="configure"/> returns, and a
    /// hosted service that listens when the host starts and closes the server when it stops.
    /// </summary>
    /// <exception cref="InvalidOperationException">A Uhura server was already added.</exception>
    public static UhuraServerBuilder AddUhuraServer(this IServiceCollection services, string endpoint, Func<UhuraServerOptions, UhuraServerOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(endpoint);
        var builder = AddServerCore(services);
        services.AddOptions<UhuraServerHostOptions>().Configure(o => o.Endpoint = endpoint);
        return configure is null ? builder : builder.Configure(configure);
    }

    /// <summary>
    /// Registers a <see cref="UhuraClient"/> singleton configured from <paramref name="configuration"/> (a section such as
    /// <c>Uhura:Client</c>: <c>Endpoint</c>, <c>WaitForConnection</c> and the keys of <see cref="UhuraClientOptions"/>,
    /// e.g. <c>Protocol</c>, <c>ConnectTimeout</c>, <c>Reconnect:FirstDelay</c>), and a hosted service that connects when
    /// the host starts and disconnects when it stops. The client does not connect before the host starts; sends made
    /// earlier are queued.
    /// </summary>
    /// <exception cref="InvalidOperationException">A Uhura client was already added.</exception>
    public static UhuraClientBuilder AddUhuraClient(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var builder = AddClientCore(services);
        services.AddOptions<UhuraClientOptions>().Bind(configuration);
        services.AddOptions<UhuraClientHostOptions>().Bind(configuration);
        return builder;
    }

    /// <summary>
    /// Registers a <see cref="UhuraClient"/> singleton for the server at <paramref name="endpoint"/> with the options
    /// <paramref name="configure"/> returns, and a hosted service that connects when the host starts (waiting for the
    /// handshake) and disconnects when it stops.
    /// </summary>
    /// <exception cref="InvalidOperationException">A Uhura client was already added.</exception>
    public static UhuraClientBuilder AddUhuraClient(this IServiceCollection services, string endpoint, Func<UhuraClientOptions, UhuraClientOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(endpoint);
        var builder = AddClientCore(services);
        services.AddOptions<UhuraClientHostOptions>().Configure(o => o.Endpoint = endpoint);
        return configure is null ? builder : builder.Configure(configure);
    }

    private static UhuraServerBuilder AddServerCore(IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(d => d.ServiceType == typeof(UhuraServer)))
        {
            throw new InvalidOperationException("A Uhura server was already added to these services.");
        }

        var builder = new UhuraServerBuilder(services);
        services.AddOptions();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<UhuraServerOptions>>().Value;
            options = options with
            {
                Connection = WithServices(options.Connection, sp),
                SessionStore = options.SessionStore ?? sp.GetService<ISessionStore>(),
            };
            foreach (var step in builder.Steps)
            {
                options = step(sp, options) ?? throw new InvalidOperationException("A Configure step of AddUhuraServer returned null.");
            }

            return new UhuraServer(options);
        });
        services.AddHostedService<UhuraServerHostedService>();
        return builder;
    }

    private static UhuraClientBuilder AddClientCore(IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(d => d.ServiceType == typeof(UhuraClient)))
        {
            throw new InvalidOperationException("A Uhura client was already added to these services.");
        }

        var builder = new UhuraClientBuilder(services);
        services.AddOptions();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(sp =>
        {
            var endpoint = sp.GetRequiredService<IOptions<UhuraClientHostOptions>>().Value.Endpoint;
            if (string.IsNullOrWhiteSpace(endpoint))
            {
                throw new InvalidOperationException("The hosted Uhura client has no endpoint: set 'Endpoint' in its configuration section or pass one to AddUhuraClient.");
            }

            var options = sp.GetRequiredService<IOptions<UhuraClientOptions>>().Value;
            options = options with { Connection = WithServices(options.Connection, sp) };
            foreach (var step in builder.Steps)
            {
                options = step(sp, options) ?? throw new InvalidOperationException("A Configure step of AddUhuraClient returned null.");
            }

            return UhuraClient.Create(UhuraEndpoint.Parse(endpoint), options);
        });
        services.AddHostedService<UhuraClientHostedService>();
        return builder;
    }

    /// <summary>The container's logger factory and clock, unless the options were given others.</summary>
    private static ConnectionOptions WithServices(ConnectionOptions connection, IServiceProvider services) => connection with
    {
        LoggerFactory = ReferenceEquals(connection.LoggerFactory, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance)
            ? services.GetService<ILoggerFactory>() ?? connection.LoggerFactory
            : connection.LoggerFactory,
        TimeProvider = ReferenceEquals(connection.TimeProvider, TimeProvider.System)
            ? services.GetService<TimeProvider>() ?? connection.TimeProvider
            : connection.TimeProvider,
    };
}

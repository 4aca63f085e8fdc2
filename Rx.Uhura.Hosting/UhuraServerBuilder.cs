namespace Rx.Uhura.Hosting;

/// <summary>
/// Returned by <c>AddUhuraServer</c>, to go on configuring the hosted server. Options are immutable records, so a
/// configuration step takes the options built so far and returns new ones (<c>o =&gt; o with { ... }</c>); the steps
/// run in order, after configuration binding and after the services taken from dependency injection.
/// </summary>
public sealed class UhuraServerBuilder
{
    private readonly List<Func<IServiceProvider, UhuraServerOptions, UhuraServerOptions>> _steps = [];

    internal UhuraServerBuilder(Microsoft.Extensions.DependencyInjection.IServiceCollection services) => Services = services;

    /// <summary>The service collection the server is registered in.</summary>
    public Microsoft.Extensions.DependencyInjection.IServiceCollection Services { get; }

    internal IReadOnlyList<Func<IServiceProvider, UhuraServerOptions, UhuraServerOptions>> Steps => _steps;

    /// <summary>Adds a step that changes the options, for what configuration cannot hold (callbacks, a session store, TLS certificates).</summary>
    public UhuraServerBuilder Configure(Func<UhuraServerOptions, UhuraServerOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        _steps.Add((_, options) => configure(options));
        return this;
    }

    /// <summary>Adds a step that changes the options with services from the container.</summary>
    public UhuraServerBuilder Configure(Func<IServiceProvider, UhuraServerOptions, UhuraServerOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        _steps.Add(configure);
        return this;
    }
}

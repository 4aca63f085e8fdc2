namespace Rx.Uhura.Hosting;

/// <summary>
/// Returned by <c>AddUhuraClient</c>, to go on configuring the hosted client. Options are immutable records, so a
/// configuration step takes the options built so far and returns new ones (<c>o =&gt; o with { ... }</c>); the steps
/// run in order, after configuration binding and after the services taken from dependency injection.
/// </summary>
public sealed class UhuraClientBuilder
{
    private readonly List<Func<IServiceProvider, UhuraClientOptions, UhuraClientOptions>> _steps = [];

    internal UhuraClientBuilder(Microsoft.Extensions.DependencyInjection.IServiceCollection services) => Services = services;

    /// <summary>The service collection the client is registered in.</summary>
    public Microsoft.Extensions.DependencyInjection.IServiceCollection Services { get; }

    internal IReadOnlyList<Func<IServiceProvider, UhuraClientOptions, UhuraClientOptions>> Steps => _steps;

    /// <summary>Adds a step that changes the options, for what configuration cannot hold (an auth token from a vault, TLS settings, a transport).</summary>
    public UhuraClientBuilder Configure(Func<UhuraClientOptions, UhuraClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        _steps.Add((_, options) => configure(options));
        return this;
    }

    /// <summary>Adds a step that changes the options with services from the container.</summary>
    public UhuraClientBuilder Configure(Func<IServiceProvider, UhuraClientOptions, UhuraClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        _steps.Add(configure);
        return this;
    }
}

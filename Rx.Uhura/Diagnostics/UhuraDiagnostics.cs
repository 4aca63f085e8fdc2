namespace Rx.Uhura.Diagnostics;

/// <summary>
/// The names under which Rx.Uhura publishes its metrics (<see cref="System.Diagnostics.Metrics.Meter"/>) and traces
/// (<see cref="System.Diagnostics.ActivitySource"/>), for OpenTelemetry's <c>AddMeter</c> / <c>AddSource</c> or a
/// <see cref="System.Diagnostics.Metrics.MeterListener"/>. The instruments and activities are listed in the README,
/// "Metrics and tracing".
/// </summary>
public static class UhuraDiagnostics
{
    /// <summary>The name of the meter: <c>Rx.Uhura</c>.</summary>
    public const string MeterName = "Rx.Uhura";

    /// <summary>The name of the activity source: <c>Rx.Uhura</c>.</summary>
    public const string ActivitySourceName = "Rx.Uhura";

    /// <summary>The version both are published with: the library's informational version, or its assembly version.</summary>
    internal static string? Version { get; } =
        typeof(UhuraDiagnostics).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false) is [System.Reflection.AssemblyInformationalVersionAttribute { InformationalVersion: { Length: > 0 } informational }, ..]
            ? informational
            : typeof(UhuraDiagnostics).Assembly.GetName().Version?.ToString();
}

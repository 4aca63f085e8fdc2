using System.Diagnostics.Metrics;
using Rx.Uhura.Diagnostics;

namespace Rx.Uhura.Tests.Observability;

/// <summary>
/// Listens to the <c>Rx.Uhura</c> meter only: sums what counters record, keeps the last value an observable
/// instrument reported, each by instrument and tags.
/// </summary>
internal sealed class MetricRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Lock _gate = new();
    private readonly List<(string Name, long Value, KeyValuePair<string, object?>[] Tags)> _recorded = [];
    private readonly Dictionary<string, long> _observed = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string?> _units = new(StringComparer.Ordinal);
    private bool _observing;

    public MetricRecorder()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == UhuraDiagnostics.MeterName)
            {
                lock (_gate)
                {
                    _units[instrument.Name] = instrument.Unit;
                }

                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            lock (_gate)
            {
                if (_observing)
                {
                    _observed[Key(instrument.Name, tags)] = value;
                }
                else
                {
                    _recorded.Add((instrument.Name, value, tags.ToArray()));
                }
            }
        });
        _listener.Start();
    }

    /// <summary>The unit an instrument was published with.</summary>
    public string? Unit(string name)
    {
        lock (_gate)
        {
            return _units.GetValueOrDefault(name);
        }
    }

    /// <summary>The sum of what <paramref name="name"/> recorded with (at least) these tags.</summary>
    public long Total(string name, params (string Key, string Value)[] tags)
    {
        lock (_gate)
        {
            return _recorded.Where(r => r.Name == name && tags.All(t => r.Tags.Any(kv => kv.Key == t.Key && Equals(kv.Value, t.Value)))).Sum(r => r.Value);
        }
    }

    /// <summary>Whether <paramref name="name"/> recorded anything.</summary>
    public bool Recorded(string name)
    {
        lock (_gate)
        {
            return _recorded.Any(r => r.Name == name);
        }
    }

    /// <summary>Collects the observable instruments now: the value of <paramref name="name"/> for one <c>uhura.side</c>.</summary>
    public long Observe(string name, string side)
    {
        lock (_gate)
        {
            _observing = true;
            try
            {
                _observed.Clear();
                _listener.RecordObservableInstruments();
                return _observed.GetValueOrDefault(name + "|uhura.side=" + side);
            }
            finally
            {
                _observing = false;
            }
        }
    }

    public void Dispose() => _listener.Dispose();

    private static string Key(string name, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var key = name;
        foreach (var tag in tags)
        {
            key += "|" + tag.Key + "=" + tag.Value;
        }

        return key;
    }
}

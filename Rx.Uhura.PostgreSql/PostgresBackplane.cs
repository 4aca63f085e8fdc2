using System.Collections.Concurrent;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using Microsoft.Extensions.Logging;
using Npgsql;
using Polly;
using Polly.Retry;
using Rx.Uhura.Scaleout;

namespace Rx.Uhura.PostgreSql;

/// <summary>
/// A backplane over PostgreSQL LISTEN/NOTIFY: the servers sharing a database and a <see cref="PostgresBackplaneOptions.Channel"/>
/// reach each other's clients (<see cref="UhuraServerOptions.Backplane"/>). Each backplane keeps one connection listening;
/// a message under 8000 bytes travels in the notification itself, a larger one in a row of
/// <see cref="PostgresBackplaneOptions.Table"/> whose id the notification carries (rows expire after
/// <see cref="PostgresBackplaneOptions.LargeMessageRetention"/>). A lost listening connection is logged, reported on
/// <see cref="Errors"/>, and reconnected with backoff; what was notified meanwhile is missed (NOTIFY is at most once).
/// </summary>
/// <example>
/// <code>
/// await using var backplane = await PostgresBackplane.StartAsync(PostgresBackplaneOptions.Default with { ConnectionString = "Host=db;Database=app" });
/// await using var server = new UhuraServer(UhuraServerOptions.Default with { Backplane = backplane });
/// </code>
/// </example>
public sealed class PostgresBackplane : IUhuraBackplane, IAsyncDisposable
{
    /// <summary>The <c>application_name</c> of the listening connection (in <c>pg_stat_activity</c>).</summary>
    public const string ListenerApplicationName = "uhura-backplane";

    private readonly PostgresBackplaneOptions _options;
    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Subject<BackplaneMessage> _messages = new();
    private readonly Subject<UhuraException> _errors = new();
    private readonly BehaviorSubject<bool> _listening = new(false);
    private readonly ConcurrentQueue<string> _inbox = new(); // filled while the listening connection reads, emptied after each read
    private readonly CancellationTokenSource _stop = new();
    private readonly ResiliencePipeline _reconnect;
    private readonly string _channel;
    private readonly string _table;
    private Task _listenLoop = Task.CompletedTask;
    private Task _cleanupLoop = Task.CompletedTask;
    private int _disposed;

    private PostgresBackplane(PostgresBackplaneOptions options)
    {
        _options = options;
        _ownsDataSource = options.DataSource is null;
        _dataSource = options.DataSource ?? NpgsqlDataSource.Create(options.ConnectionString!);
        _logger = options.LoggerFactory.CreateLogger<PostgresBackplane>();
        _channel = "\"" + options.Channel + "\"";
        _table = "\"" + options.Table + "\"";
        _reconnect = new ResiliencePipelineBuilder { TimeProvider = options.TimeProvider }.AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = static args => ValueTask.FromResult(args.Outcome.Exception is { } e && e is not OperationCanceledException),
            BackoffType = DelayBackoffType.Exponential,
            Delay = options.ReconnectDelay,
            MaxDelay = options.MaxReconnectDelay,
            UseJitter = true,
            MaxRetryAttempts = int.MaxValue,
            OnRetry = args =>
            {
                _logger.LogWarning(args.Outcome.Exception, "Connecting the backplane's listener failed (attempt {Attempt}); retrying in {Delay}", args.AttemptNumber + 1, args.RetryDelay);
                return default;
            },
        }).Build();
    }

    /// <summary>
    /// Creates the table if missing, opens the listening connection, and returns the backplane, listening. Later losses
    /// of the connection are recovered in the background.
    /// </summary>
    /// <exception cref="ArgumentException">Neither a connection string nor a data source, or an invalid channel or table name.</exception>
    /// <exception cref="NpgsqlException">The database cannot be reached now.</exception>
    public static async Task<PostgresBackplane> StartAsync(PostgresBackplaneOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var backplane = new PostgresBackplane(options);
        try
        {
            await backplane.EnsureTableAsync(cancellationToken).ConfigureAwait(false);
            var connection = await backplane.ListenAsync(cancellationToken).ConfigureAwait(false);
            backplane._listenLoop = Task.Run(() => backplane.ListenLoopAsync(connection));
            backplane._cleanupLoop = Task.Run(backplane.CleanupLoopAsync);
        }
        catch
        {
            await backplane.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return backplane;
    }

    /// <inheritdoc/>
    public IObservable<BackplaneMessage> Messages => _messages.AsObservable();

    /// <summary>Failures noticed in the background: a lost listening connection (being reconnected), a large message expired before it was read.</summary>
    public IObservable<UhuraException> Errors => _errors.AsObservable();

    /// <summary>Whether the listening connection is up now.</summary>
    public bool IsListening => _listening.Value;

    /// <summary>Whether the listening connection is up: the current value first, then its changes. Completes on dispose.</summary>
    public IObservable<bool> Listening => _listening.DistinctUntilChanged();

    /// <summary>
    /// Notifies every backplane on the channel, through a pooled connection: inline below 8000 bytes, through a row
    /// otherwise. Completes once PostgreSQL took the notification.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The backplane was disposed.</exception>
    /// <exception cref="NpgsqlException">The database could not be reached: the message is lost.</exception>
    public async ValueTask PublishAsync(BackplaneMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var (inline, body) = PostgresBackplaneCodec.Encode(message);
        var command = _dataSource.CreateCommand(inline is not null
            ? "SELECT pg_notify($1, $2)"
            : $"WITH r AS (INSERT INTO {_table} (body) VALUES ($2) RETURNING id) SELECT pg_notify($1, '#' || r.id) FROM r");
        await using var commandScope = command.ConfigureAwait(false);
        command.Parameters.Add(new NpgsqlParameter { Value = _options.Channel });
        command.Parameters.Add(inline is not null ? new NpgsqlParameter { Value = inline } : new NpgsqlParameter { Value = body });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops listening and the cleanup, completes the observables, and disposes the data source if it made it. Idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_listenLoop, _cleanupLoop).ConfigureAwait(false);
        lock (_gate)
        {
            _messages.OnCompleted();
            _errors.OnCompleted();
            _listening.OnNext(false);
            _listening.OnCompleted();
        }

        if (_ownsDataSource)
        {
            await _dataSource.DisposeAsync().ConfigureAwait(false);
        }

        _stop.Dispose();
    }

    private async Task EnsureTableAsync(CancellationToken cancellationToken)
    {
        var command = _dataSource.CreateCommand(
            $"CREATE TABLE IF NOT EXISTS {_table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, created timestamptz NOT NULL DEFAULT now(), body bytea NOT NULL)");
        await using var commandScope = command.ConfigureAwait(false);
        try
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UniqueViolation or PostgresErrorCodes.DuplicateTable)
        {
            // another backplane created it at the same moment
        }
    }

    /// <summary>Opens a connection and LISTENs on it.</summary>
    private async Task<NpgsqlConnection> ListenAsync(CancellationToken cancellationToken)
    {
        var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            connection.Notification += OnNotification;
            var command = new NpgsqlCommand($"SET application_name = '{ListenerApplicationName}'; LISTEN {_channel}", connection);
            await using var commandScope = command.ConfigureAwait(false);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("Backplane listening on channel {Channel} (backend {Pid})", _options.Channel, connection.ProcessID);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e)
    {
        if (string.Equals(e.Channel, _options.Channel, StringComparison.Ordinal))
        {
            _inbox.Enqueue(e.Payload);
        }
    }

    private async Task ListenLoopAsync(NpgsqlConnection? connection)
    {
        var stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                connection ??= await _reconnect.ExecuteAsync(async token => await ListenAsync(token).ConfigureAwait(false), stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }

            try
            {
                SetListening(true);
                await ReceiveAsync(connection, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                _logger.LogWarning(ex, "The backplane's listening connection failed; reconnecting. Notifications sent meanwhile are lost");
                Report(new BackplaneException($"The PostgreSQL backplane lost its listening connection (reconnecting; messages sent meanwhile are lost): {ex.Message}", ex));
            }
            finally
            {
                SetListening(false);
                _inbox.Clear();
                connection.Notification -= OnNotification;
                await connection.DisposeAsync().ConfigureAwait(false);
                connection = null;
            }
        }
    }

    /// <summary>Hands out what each read of the listening connection brought, until it fails.</summary>
    private async Task ReceiveAsync(NpgsqlConnection connection, CancellationToken stop)
    {
        while (true)
        {
            while (_inbox.TryDequeue(out var payload))
            {
                await HandleAsync(connection, payload, stop).ConfigureAwait(false);
            }

            if (!await connection.WaitAsync(_options.KeepAliveInterval, stop).ConfigureAwait(false))
            {
                var ping = new NpgsqlCommand("SELECT 1", connection);
                await using var pingScope = ping.ConfigureAwait(false);
                await ping.ExecuteScalarAsync(stop).ConfigureAwait(false);
            }
        }
    }

    private async Task HandleAsync(NpgsqlConnection connection, string payload, CancellationToken stop)
    {
        BackplaneMessage message;
        try
        {
            if (payload.StartsWith('#'))
            {
                var id = long.Parse(payload.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture);
                var command = new NpgsqlCommand($"SELECT body FROM {_table} WHERE id = $1", connection);
                await using var commandScope = command.ConfigureAwait(false);
                command.Parameters.Add(new NpgsqlParameter { Value = id });
                if (await command.ExecuteScalarAsync(stop).ConfigureAwait(false) is not byte[] body)
                {
                    _logger.LogWarning("Backplane message {Id} was deleted before it was read (LargeMessageRetention); it is lost", id);
                    Report(new BackplaneException($"A large backplane message (row {id}) expired before it was read; it is lost."));
                    return;
                }

                message = PostgresBackplaneCodec.DecodeBody(body);
            }
            else if (payload.StartsWith('='))
            {
                message = PostgresBackplaneCodec.DecodeInline(payload.AsSpan(1));
            }
            else
            {
                throw new FormatException("Unknown notification format.");
            }
        }
        catch (Exception ex) when (ex is FormatException or OverflowException or ArgumentException)
        {
            _logger.LogWarning(ex, "Ignored a notification on channel {Channel} that is not a backplane message", _options.Channel);
            return;
        }

        try
        {
            _messages.OnNext(message);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "A subscriber of the backplane's messages threw on {Message}", message);
        }
    }

    private async Task CleanupLoopAsync()
    {
        var stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.CleanupInterval, _options.TimeProvider, stop).ConfigureAwait(false);
                var command = _dataSource.CreateCommand($"DELETE FROM {_table} WHERE created < now() - $1");
                await using var commandScope = command.ConfigureAwait(false);
                command.Parameters.Add(new NpgsqlParameter { Value = _options.LargeMessageRetention });
                var deleted = await command.ExecuteNonQueryAsync(stop).ConfigureAwait(false);
                if (deleted > 0)
                {
                    _logger.LogDebug("Deleted {Count} expired large backplane messages", deleted);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                _logger.LogWarning(ex, "Deleting expired large backplane messages failed; retrying at the next interval");
            }
        }
    }

    private void SetListening(bool value)
    {
        lock (_gate)
        {
            if (Volatile.Read(ref _disposed) == 0 || !value)
            {
                _listening.OnNext(value);
            }
        }
    }

    private void Report(UhuraException error)
    {
        lock (_gate)
        {
            try
            {
                _errors.OnNext(error);
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "A subscriber of the backplane's errors threw");
            }
        }
    }
}

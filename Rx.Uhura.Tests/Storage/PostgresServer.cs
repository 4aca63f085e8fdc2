using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Rx.Uhura.Tests.Storage;

/// <summary>
/// A throwaway PostgreSQL 15 server for the test run, started from the machine's binaries on first use: <c>initdb</c>
/// into a temp folder, a free loopback port, its socket in that folder; stopped and deleted when the test process exits.
/// Each test asks for a database of its own (<see cref="CreateDatabaseAsync"/>), so tests run in parallel without
/// seeing each other's rows. Missing binaries fail the test with the reason: nothing is skipped.
/// </summary>
public sealed class PostgresServer
{
    private static readonly Lazy<Task<PostgresServer>> s_shared = new(StartAsync);
    private static int s_databases;
    private readonly string _directory;
    private readonly string _binaries;

    private PostgresServer(string directory, string binaries, int port)
    {
        _directory = directory;
        _binaries = binaries;
        Port = port;
    }

    /// <summary>The port it listens on (127.0.0.1).</summary>
    public int Port { get; }

    /// <summary>The one server of this test process, started on first use.</summary>
    public static Task<PostgresServer> SharedAsync() => s_shared.Value;

    /// <summary>A connection string for the server's superuser to <paramref name="database"/>.</summary>
    public string ConnectionString(string database = "postgres") => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = "postgres",
        Database = database,
        Pooling = true,
        Timeout = 15,
    }.ConnectionString;

    /// <summary>Creates an empty database for one test and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"t{Environment.ProcessId}_{Interlocked.Increment(ref s_databases)}";
        await using var connection = new NpgsqlConnection(ConnectionString());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await command.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    private static async Task<PostgresServer> StartAsync()
    {
        var binaries = FindBinaries();
        var directory = Directory.CreateTempSubdirectory("rx-uhura-pg-").FullName;
        var data = Path.Combine(directory, "data");
        var asRoot = Environment.UserName == "root";
        if (asRoot)
        {
            // initdb refuses root: the cluster belongs to the postgres user.
            await RunAsync("chown", ["postgres:postgres", directory]);
        }

        await RunPostgresToolAsync(asRoot, Path.Combine(binaries, "initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]);
        var port = FreePort();
        var options = $"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200";
        await RunPostgresToolAsync(asRoot, Path.Combine(binaries, "pg_ctl"), ["-D", data, "-o", options, "-l", Path.Combine(directory, "log"), "-w", "-t", "60", "start"]);
        var server = new PostgresServer(directory, binaries, port);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop(asRoot, data);
        return server;
    }

    private void Stop(bool asRoot, string data)
    {
        try
        {
            var (file, args) = asRoot
                ? ("runuser", new[] { "-u", "postgres", "--", Path.Combine(_binaries, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop" })
                : (Path.Combine(_binaries, "pg_ctl"), new[] { "-D", data, "-m", "immediate", "-w", "stop" });
            using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            process.WaitForExit(30_000);
            Directory.Delete(_directory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // Best effort at process exit: the temp folder is left behind.
        }
    }

    private static string FindBinaries()
    {
        var candidates = new[] { Environment.GetEnvironmentVariable("UHURA_PG_BIN") }
            .Concat(Directory.Exists("/usr/lib/postgresql")
                ? Directory.GetDirectories("/usr/lib/postgresql").OrderDescending().Select(d => Path.Combine(d, "bin"))
                : []);
        foreach (var candidate in candidates)
        {
            if (candidate is not null && File.Exists(Path.Combine(candidate, "initdb")) && File.Exists(Path.Combine(candidate, "pg_ctl")))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("The PostgreSQL server binaries (initdb, pg_ctl) were not found under /usr/lib/postgresql/*/bin; set UHURA_PG_BIN to their folder.");
    }

    private static Task RunPostgresToolAsync(bool asRoot, string tool, string[] args)
        => asRoot ? RunAsync("runuser", ["-u", "postgres", "--", tool, .. args]) : RunAsync(tool, args);

    private static async Task RunAsync(string file, string[] args)
    {
        var start = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {process.ExitCode}: {await stderr}{await stdout}");
        }
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
